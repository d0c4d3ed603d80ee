//! Proof-of-work challenges (ALTCHA v2, `PBKDF2/SHA-256`, deterministic mode): issued signed
//! and expiring, bound to the route they admit, good for one request across every instance.
//! Checking one costs two HMACs; solving one costs the client about `counter × cost` PBKDF2
//! iterations, the counter growing with the service's load.

use std::collections::BTreeMap;

use base64::Engine;
use pixseal_seal::WrappedKey;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use zeroize::Zeroizing;

use crate::{Result, ServiceError, Services};

/// The installation secrets that sign challenges and their expected keys.
const SIGNATURE_SECRET: &str = "challenge.signature";
const KEY_SIGNATURE_SECRET: &str = "challenge.key_signature";

/// The key derivation every challenge uses: WebCrypto does it natively in the browser.
const ALGORITHM: &str = "PBKDF2/SHA-256";

/// How much harder challenges get when every decode slot is busy (linearly in between).
const MAX_LOAD_FACTOR: f64 = 4.0;

/// The request a challenge admits (signed into it as `data.route`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ChallengeRoute {
    /// `POST /v1/stamp` past `[stamp].challenge_over` pictures.
    Stamp,
}

impl ChallengeRoute {
    pub fn as_str(self) -> &'static str {
        match self {
            ChallengeRoute::Stamp => "stamp",
        }
    }
}

/// The two HMAC secrets, unwrapped once per process.
pub(crate) struct ChallengeSecrets {
    signature: Zeroizing<String>,
    key_signature: Zeroizing<String>,
}

/// A challenge as issued: ALTCHA's `{parameters, signature}`.
pub type Challenge = altcha::Challenge;

fn refused(code: &'static str, message: impl Into<String>) -> ServiceError {
    ServiceError::Forbidden {
        code,
        message: message.into(),
    }
}

impl Services {
    /// The installation secret for `purpose` as hex: unwrapped from the database, or made
    /// now by the key provider (another instance's, if it stored one first, wins).
    async fn installation_secret(&self, purpose: &str) -> Result<Zeroizing<String>> {
        let stored = match self.db.installation_secret(purpose).await? {
            Some(s) => s,
            None => {
                let region = self.regions[0].clone();
                let (keys, r) = (self.keys.clone(), region.clone());
                let wrapped = tokio::task::spawn_blocking(move || keys.generate_data_key(&r))
                    .await??
                    .1;
                let wrapped = base64::engine::general_purpose::STANDARD.encode(wrapped.to_bytes());
                self.db
                    .insert_installation_secret(purpose, &region, &wrapped)
                    .await?
            }
        };
        let (region, wrapped) = stored;
        let wrapped = base64::engine::general_purpose::STANDARD
            .decode(wrapped)
            .ok()
            .and_then(|b| WrappedKey::from_bytes(&b).ok())
            .ok_or_else(|| ServiceError::internal("stored installation secret is malformed"))?;
        let keys = self.keys.clone();
        let key =
            tokio::task::spawn_blocking(move || keys.unwrap_data_key(&wrapped, &region)).await??;
        Ok(Zeroizing::new(hex::encode(*key)))
    }

    async fn challenge_secrets(&self) -> Result<&ChallengeSecrets> {
        self.challenge_secrets
            .get_or_try_init(|| async {
                Ok(ChallengeSecrets {
                    signature: self.installation_secret(SIGNATURE_SECRET).await?,
                    key_signature: self.installation_secret(KEY_SIGNATURE_SECRET).await?,
                })
            })
            .await
    }

    /// A fresh challenge for `route`, expiring after `[stamp].challenge_minutes`, its work
    /// scaled by how busy the decode slots are now.
    pub async fn issue_challenge(&self, route: ChallengeRoute) -> Result<Challenge> {
        self.challenge_for(route.as_str()).await
    }

    async fn challenge_for(&self, route: &str) -> Result<Challenge> {
        let secrets = self.challenge_secrets().await?;
        let c = &self.stamp;
        let load = 1.0 + (MAX_LOAD_FACTOR - 1.0) * self.decode_load();
        let most = (f64::from(c.challenge_work) * load).round() as u32;
        let mut random = [0u8; 4];
        getrandom::fill(&mut random).map_err(|e| ServiceError::internal(e.to_string()))?;
        // Uniform in [most/2, most]: a client cannot tell in advance how long it will take.
        let counter = most / 2 + u32::from_le_bytes(random) % (most - most / 2 + 1);
        let expires_at = self.clock.now_ms() / 1000 + c.challenge_minutes as i64 * 60;
        let data = BTreeMap::from([("route".to_string(), route.into())]);
        altcha::create_challenge(altcha::CreateChallengeOptions {
            algorithm: ALGORITHM.into(),
            cost: c.challenge_work_cost,
            counter: Some(counter),
            data: Some(data),
            expires_at: Some(expires_at),
            hmac_signature_secret: Some(secrets.signature.to_string()),
            hmac_key_signature_secret: Some(secrets.key_signature.to_string()),
            ..Default::default()
        })
        .map_err(|e| ServiceError::internal(format!("making a challenge: {e}")))
    }

    /// Accept a solved challenge for `route` once: `payload` is ALTCHA's base64 JSON
    /// `{challenge, solution}`. Each refusal has its own code: `challenge_invalid` (not a
    /// payload, or not signed by this installation), `challenge_expired`,
    /// `challenge_wrong_route`, `challenge_unsolved` (the solution is wrong),
    /// `challenge_replayed` (already used, on any instance).
    pub async fn redeem_challenge(&self, route: ChallengeRoute, payload: &str) -> Result<()> {
        let (signature, expires_at) = self.check_challenge(route, payload).await?;
        if !self
            .db
            .spend_challenge(&signature, expires_at * 1000)
            .await?
        {
            return Err(refused(
                "challenge_replayed",
                "this challenge was already used: each solution is good for one request",
            ));
        }
        Ok(())
    }

    /// Everything [`Services::redeem_challenge`] checks but whether it was used before: the
    /// challenge's signature and expiry (Unix seconds) when it holds.
    pub async fn check_challenge(
        &self,
        route: ChallengeRoute,
        payload: &str,
    ) -> Result<(String, i64)> {
        let invalid = || refused("challenge_invalid", "not a challenge this service issued");
        let json = base64::engine::general_purpose::STANDARD
            .decode(payload.trim())
            .map_err(|_| invalid())?;
        let payload: altcha::Payload = serde_json::from_slice(&json).map_err(|_| invalid())?;
        let secrets = self.challenge_secrets().await?;
        let params = &payload.challenge.parameters;
        // Judged by the service's clock first (tests move it); the library then checks the
        // system clock too.
        let Some(expires_at) = params.expires_at else {
            return Err(invalid());
        };
        let result = altcha::verify_solution(altcha::VerifySolutionOptions {
            hmac_key_signature_secret: Some(secrets.key_signature.to_string()),
            ..altcha::VerifySolutionOptions::new(
                &payload.challenge,
                &payload.solution,
                secrets.signature.to_string(),
            )
        })
        .map_err(|_| invalid())?;
        if result.invalid_signature == Some(true) {
            return Err(invalid());
        }
        if result.expired || expires_at <= self.clock.now_ms() / 1000 {
            return Err(refused(
                "challenge_expired",
                "the challenge expired: fetch a new one from GET /v1/challenge",
            ));
        }
        let bound = params
            .data
            .as_ref()
            .and_then(|d| d.get("route"))
            .and_then(|r| r.as_str());
        if bound != Some(route.as_str()) {
            return Err(refused(
                "challenge_wrong_route",
                format!(
                    "this challenge was issued for another route, not {}",
                    route.as_str()
                ),
            ));
        }
        if !result.verified {
            return Err(refused(
                "challenge_unsolved",
                "the solution does not solve the challenge",
            ));
        }
        let signature = payload.challenge.signature.clone().ok_or_else(invalid)?;
        Ok((signature, expires_at))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An instance on a fresh SQLite database in `dir`, with cheap challenges.
    async fn open(dir: &std::path::Path) -> Services {
        let mut config = crate::Config {
            data_dir: dir.to_path_buf(),
            ..crate::Config::default()
        };
        config.stamp.challenge_work_cost = 10;
        config.stamp.challenge_work = 200;
        Services::open(&config).await.unwrap()
    }

    fn solve(c: &Challenge) -> altcha::Solution {
        altcha::solve_challenge(altcha::SolveChallengeOptions::new(c))
            .unwrap()
            .expect("solved")
    }

    fn payload(c: &Challenge, s: &altcha::Solution) -> String {
        let json = serde_json::json!({ "challenge": c, "solution": s });
        base64::engine::general_purpose::STANDARD.encode(json.to_string())
    }

    fn code(r: Result<()>) -> &'static str {
        r.err().map_or("ok", |e| e.code())
    }

    #[tokio::test]
    async fn a_solution_is_good_once_on_any_instance_and_each_refusal_says_why() {
        let dir = tempfile::tempdir().unwrap();
        let one = open(dir.path()).await;
        let two = one.with_empty_caches();
        let stamp = ChallengeRoute::Stamp;

        let c = one.issue_challenge(stamp).await.unwrap();
        assert_eq!(c.parameters.algorithm, ALGORITHM);
        assert!(
            (100..=200).contains(&solve(&c).counter),
            "{}",
            solve(&c).counter
        );
        let good = payload(&c, &solve(&c));
        // Issued by one instance, redeemed on the other (same database, its own caches);
        // then refused everywhere.
        assert_eq!(code(two.redeem_challenge(stamp, &good).await), "ok");
        assert_eq!(
            code(two.redeem_challenge(stamp, &good).await),
            "challenge_replayed"
        );
        assert_eq!(
            code(one.redeem_challenge(stamp, &good).await),
            "challenge_replayed"
        );

        let c = one.issue_challenge(stamp).await.unwrap();
        let mut wrong = solve(&c);
        wrong.counter += 1;
        wrong.derived_key = "00".repeat(32);
        assert_eq!(
            code(one.redeem_challenge(stamp, &payload(&c, &wrong)).await),
            "challenge_unsolved"
        );
        // Refused solutions spend nothing: the right one still works.
        assert_eq!(
            code(one.redeem_challenge(stamp, &payload(&c, &solve(&c))).await),
            "ok"
        );

        let other = one.challenge_for("verify").await.unwrap();
        assert_eq!(
            code(
                one.redeem_challenge(stamp, &payload(&other, &solve(&other)))
                    .await
            ),
            "challenge_wrong_route"
        );

        // Signed with another secret, or with its difficulty lowered after signing.
        let forged = altcha::create_challenge(altcha::CreateChallengeOptions {
            cost: 1,
            counter: Some(1),
            data: c.parameters.data.clone(),
            expires_at: c.parameters.expires_at,
            hmac_signature_secret: Some("guessed".into()),
            hmac_key_signature_secret: Some("guessed".into()),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(
            code(
                one.redeem_challenge(stamp, &payload(&forged, &solve(&forged)))
                    .await
            ),
            "challenge_invalid"
        );
        let c = one.issue_challenge(stamp).await.unwrap();
        let mut eased = c.clone();
        eased.parameters.cost = 1;
        assert_eq!(
            code(
                one.redeem_challenge(stamp, &payload(&eased, &solve(&c)))
                    .await
            ),
            "challenge_invalid"
        );
        for junk in ["", "not base64!", "bm90IGpzb24=", &"A".repeat(10_000)] {
            assert_eq!(
                code(one.redeem_challenge(stamp, junk).await),
                "challenge_invalid"
            );
        }

        let c = one.issue_challenge(stamp).await.unwrap();
        let late = payload(&c, &solve(&c));
        one.clock.advance(6 * 60 * 1000);
        assert_eq!(
            code(one.redeem_challenge(stamp, &late).await),
            "challenge_expired"
        );
    }

    #[tokio::test]
    async fn challenges_get_harder_as_the_decode_slots_fill() {
        let dir = tempfile::tempdir().unwrap();
        let s = open(dir.path()).await;
        let idle = solve(&s.issue_challenge(ChallengeRoute::Stamp).await.unwrap()).counter;
        assert!(idle <= 200, "{idle}");
        let mut held = Vec::new();
        while s.decode_load() < 1.0 {
            held.push(s.decode_slot().await.unwrap());
        }
        let busy = solve(&s.issue_challenge(ChallengeRoute::Stamp).await.unwrap()).counter;
        assert!((400..=800).contains(&busy), "{busy}");
    }
}
