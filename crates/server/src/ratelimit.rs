//! Rate limits (GCRA) by route class: per API key once the key checks out, per client address
//! for everything else (no key, an unknown or revoked key, a malformed header), a stricter
//! per-address class for the public code verification routes, and a budget of failed
//! authentications per address. In-process (governor) or shared through Redis (one Lua
//! script, Redis' own clock). A Redis outage degrades to the in-process limiter of each
//! instance: still limited, never a 500. In-process state is pruned every period.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use pixseal_service::{RateLimitBackend, ServerConfig, ServiceError};

use crate::auth::{Authentication, Bearer};
use crate::client::ClientAddr;
use crate::{ApiError, AppState};

/// GCRA in Redis: TAT per key; allow when the new TAT stays within the burst window.
const GCRA: &str = r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local new_tat = tat + interval
local allow_at = new_tat - interval * burst
if allow_at > now then
  return {0, allow_at - now}
end
redis.call('SET', KEYS[1], new_tat, 'PX', new_tat - now)
return {1, 0}
"#;

struct Rule {
    limit: u32,
    period: Duration,
    local: Option<DefaultKeyedRateLimiter<String>>,
}

impl Rule {
    fn new(limit: u32, period: Duration) -> Self {
        let local = NonZeroU32::new(limit).and_then(|n| {
            let per = period.checked_div(n.get())?;
            Quota::with_period(per).map(|q| RateLimiter::keyed(q.allow_burst(n)))
        });
        Rule {
            limit,
            period,
            local,
        }
    }
}

/// The anonymous stamps an address gets without a challenge are counted per hour.
const ANONYMOUS_STAMP_PERIOD: Duration = Duration::from_secs(3600);

/// The configured limiter.
pub struct Limiter {
    per_key: Rule,
    per_ip: Rule,
    verify_per_ip: Rule,
    auth_failures: Rule,
    /// Anonymous stamp requests per address without a solved challenge.
    anonymous_stamps: Rule,
    /// Addresses out of failed-authentication budget, and until when (in process; with Redis
    /// also a key there, so every instance refuses them).
    refused: Mutex<HashMap<String, Instant>>,
    period: Duration,
    prefix: String,
    redis: Option<redis::aio::ConnectionManager>,
    script: redis::Script,
}

pub type SharedLimiter = Arc<Limiter>;

impl Limiter {
    /// Build from config. With the Redis backend the connection is made lazily; when Redis is
    /// unreachable now, the limiter starts in fallback mode and logs it.
    pub async fn new(c: &ServerConfig) -> Self {
        let period = Duration::from_secs(c.rate_limit_period_secs.max(1));
        let redis = if c.rate_limit_backend == RateLimitBackend::Redis {
            let conn = match redis::Client::open(c.rate_limit_redis_url.expose()) {
                Ok(client) => {
                    let cfg = redis::aio::ConnectionManagerConfig::new()
                        .set_connection_timeout(Duration::from_millis(500))
                        .set_response_timeout(Duration::from_millis(500))
                        .set_number_of_retries(1);
                    tokio::time::timeout(
                        Duration::from_secs(2),
                        redis::aio::ConnectionManager::new_with_config(client, cfg),
                    )
                    .await
                    .ok()
                    .and_then(Result::ok)
                }
                Err(_) => None,
            };
            if conn.is_none() {
                tracing::error!(
                    "rate limits: Redis unreachable; using this instance's in-process limits"
                );
            }
            conn
        } else {
            None
        };
        Limiter {
            per_key: Rule::new(c.rate_limit_per_key, period),
            per_ip: Rule::new(c.rate_limit_per_ip, period),
            verify_per_ip: Rule::new(c.rate_limit_verify_per_ip, period),
            auth_failures: Rule::new(c.rate_limit_auth_failures_per_ip, period),
            anonymous_stamps: Rule::new(0, ANONYMOUS_STAMP_PERIOD),
            refused: Mutex::default(),
            period,
            prefix: c.rate_limit_prefix.clone(),
            redis,
            script: redis::Script::new(GCRA),
        }
    }

    /// `Ok(())` to go on, or `Err(retry_after)`.
    async fn check(&self, rule: &Rule, key: String) -> Result<(), Duration> {
        if rule.limit == 0 {
            return Ok(());
        }
        if let Some(conn) = &self.redis {
            let interval_ms = (rule.period.as_millis() as u64 / rule.limit as u64).max(1);
            let mut conn = conn.clone();
            let res: redis::RedisResult<(i64, i64)> = self
                .script
                .key(format!("{}{key}", self.prefix))
                .arg(interval_ms)
                .arg(rule.limit)
                .invoke_async(&mut conn)
                .await;
            match res {
                Ok((1, _)) => return Ok(()),
                Ok((_, wait_ms)) => return Err(Duration::from_millis(wait_ms.max(1) as u64)),
                Err(e) => {
                    tracing::warn!(error = %e, "rate limits: Redis error; in-process fallback")
                }
            }
        }
        match &rule.local {
            Some(l) => l.check_key(&key).map_err(|not_until| {
                not_until.wait_time_from(governor::clock::Clock::now(
                    &governor::clock::DefaultClock::default(),
                ))
            }),
            None => Ok(()),
        }
    }

    fn refused_locally(&self, key: &str) -> Result<(), Duration> {
        let refused = self.refused.lock().unwrap_or_else(|p| p.into_inner());
        match refused.get(key) {
            Some(until) => match until.checked_duration_since(Instant::now()) {
                Some(wait) if !wait.is_zero() => Err(wait),
                _ => Ok(()),
            },
            None => Ok(()),
        }
    }

    /// Allow `per_hour` anonymous stamp requests per address without a challenge (0: none).
    pub fn with_anonymous_stamps(mut self, per_hour: u32) -> Self {
        self.anonymous_stamps = Rule::new(per_hour, ANONYMOUS_STAMP_PERIOD);
        self
    }

    /// Spend one of this address's anonymous stamp requests without a challenge; `false` when
    /// none is left (the request then needs a solved challenge).
    pub(crate) async fn anonymous_stamp(&self, client: &ClientAddr) -> bool {
        self.anonymous_stamps.limit > 0
            && self
                .check(&self.anonymous_stamps, format!("as:{}", client.bucket()))
                .await
                .is_ok()
    }

    /// Whether this address may still try a key, spending nothing: `Err(wait)` once a failed
    /// authentication from it went past its budget, until that budget has room again.
    pub(crate) async fn may_authenticate(&self, client: &ClientAddr) -> Result<(), Duration> {
        let key = format!("afr:{}", client.bucket());
        if let Some(conn) = &self.redis {
            let ttl: redis::RedisResult<i64> = redis::cmd("PTTL")
                .arg(format!("{}{key}", self.prefix))
                .query_async(&mut conn.clone())
                .await;
            match ttl {
                Ok(ms) if ms > 0 => return Err(Duration::from_millis(ms as u64)),
                Ok(_) => return Ok(()),
                Err(e) => {
                    tracing::warn!(error = %e, "rate limits: Redis error; in-process fallback")
                }
            }
        }
        self.refused_locally(&key)
    }

    /// Count one failed authentication from this address; past the budget, the address is
    /// refused until the budget has room again.
    pub(crate) async fn failed_authentication(&self, client: &ClientAddr) {
        let Err(wait) = self
            .check(&self.auth_failures, format!("af:{}", client.bucket()))
            .await
        else {
            return;
        };
        let key = format!("afr:{}", client.bucket());
        if let Some(conn) = &self.redis {
            let ms = wait.as_millis().max(1) as u64;
            let set: redis::RedisResult<()> = redis::cmd("SET")
                .arg(format!("{}{key}", self.prefix))
                .arg(1)
                .arg("PX")
                .arg(ms)
                .query_async(&mut conn.clone())
                .await;
            if let Err(e) = set {
                tracing::warn!(error = %e, "rate limits: Redis error; refusal kept in process");
            }
        }
        self.refused
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key, Instant::now() + wait);
    }

    /// Forget in-process state that no longer limits anyone: keys whose budget has refilled and
    /// refusals that have expired. Memory follows the clients of the last period, not every
    /// token or address ever seen.
    pub fn prune(&self) {
        for rule in [
            &self.per_key,
            &self.per_ip,
            &self.verify_per_ip,
            &self.auth_failures,
            &self.anonymous_stamps,
        ] {
            if let Some(l) = &rule.local {
                l.retain_recent();
                l.shrink_to_fit();
            }
        }
        let now = Instant::now();
        let mut refused = self.refused.lock().unwrap_or_else(|p| p.into_inner());
        refused.retain(|_, until| *until > now);
        refused.shrink_to_fit();
    }

    /// Keys held in process (every rule, and the refusals).
    pub fn tracked(&self) -> usize {
        let rules = [
            &self.per_key,
            &self.per_ip,
            &self.verify_per_ip,
            &self.auth_failures,
            &self.anonymous_stamps,
        ];
        rules
            .iter()
            .filter_map(|r| r.local.as_ref().map(|l| l.len()))
            .sum::<usize>()
            + self.refused.lock().map(|r| r.len()).unwrap_or_default()
    }

    /// Prune every period for as long as the limiter is in use.
    pub fn spawn_pruner(limiter: &Arc<Limiter>) {
        let weak: Weak<Limiter> = Arc::downgrade(limiter);
        let every = limiter.period;
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.tick().await;
            loop {
                tick.tick().await;
                match weak.upgrade() {
                    Some(l) => l.prune(),
                    None => return,
                }
            }
        });
    }
}

impl Limiter {
    /// One check against the per-key rule (benchmarks and tests).
    pub async fn check_key(&self, key: &str) -> Result<(), Duration> {
        self.check(&self.per_key, format!("k:{key}")).await
    }
}

/// The public routes that answer whether a code is valid: the class guessing would target.
pub const VERIFY_ROUTES: [&str; 2] = ["/v1/codes/verify", "/v1/codes/live/verify"];

/// Whether a request asks whether a code is valid: the API routes, or the `/check` page's form,
/// which answers the same question and so spends the same budget.
fn checks_a_code(method: &axum::http::Method, path: &str) -> bool {
    VERIFY_ROUTES.contains(&path) || (path == "/check" && method == axum::http::Method::POST)
}

/// Middleware: every route but health, readiness, metrics and the pages' assets. A bearer token is checked here,
/// once: a valid key is limited per key and handed on to the handler; any other request is
/// limited per client address, and a failed authentication also spends that address's
/// failed-authentication budget (when it is spent, tokens from there are not even looked up).
pub async fn limit(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let path = req.uri().path();
    // Probes, and the pages' compiled-in style sheet, scripts and icon: constant and cheap, and
    // counting them would spend a reader's budget four times per page.
    if matches!(path, "/healthz" | "/readyz" | "/metrics") || path.starts_with("/assets/") {
        return next.run(req).await;
    }
    let client = req
        .extensions()
        .get::<ClientAddr>()
        .copied()
        .unwrap_or(ClientAddr([0, 0, 0, 0].into()));
    let limiter = &state.limiter;
    let per_ip = format!("ip:{}", client.bucket());
    let verdict = if checks_a_code(req.method(), path) {
        // Code verification is public whatever the request carries: counted by address.
        limiter
            .check(&limiter.verify_per_ip, format!("v:{}", client.bucket()))
            .await
    } else {
        match Bearer::of(req.headers()) {
            Bearer::Token(token) => {
                if let Err(wait) = limiter.may_authenticate(&client).await {
                    return too_many(wait, "too many failed authentications from this address");
                }
                // Audited under the route's template: a bounded set, never the raw path.
                let route = req
                    .extensions()
                    .get::<MatchedPath>()
                    .map_or("unmatched", |p| p.as_str())
                    .to_string();
                match state.services.authenticate(&token, &route).await {
                    Ok(caller) => {
                        let key = format!("k:{}", caller.id());
                        req.extensions_mut()
                            .insert(Authentication::Valid(Box::new(caller)));
                        limiter.check(&limiter.per_key, key).await
                    }
                    Err(ServiceError::Unauthorized(why)) => {
                        limiter.failed_authentication(&client).await;
                        req.extensions_mut().insert(Authentication::Refused(why));
                        limiter.check(&limiter.per_ip, per_ip).await
                    }
                    Err(e) => return ApiError::from(e).into_response(),
                }
            }
            Bearer::Missing | Bearer::Malformed(_) => limiter.check(&limiter.per_ip, per_ip).await,
        }
    };
    match verdict {
        Ok(()) => next.run(req).await,
        Err(wait) => too_many(wait, "too many requests"),
    }
}

/// 429 with `Retry-After` (whole seconds, at least 1) and the JSON error body.
fn too_many(wait: Duration, what: &str) -> Response {
    let secs = (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1);
    let mut e = ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "rate_limited",
        format!("{what}; retry after {secs} s"),
    );
    e.retry_after = Some(secs);
    e.into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn limiter(per_ip: u32, failures: u32, period_secs: u64) -> Limiter {
        Limiter::new(&ServerConfig {
            rate_limit_backend: RateLimitBackend::Memory,
            rate_limit_per_ip: per_ip,
            rate_limit_auth_failures_per_ip: failures,
            rate_limit_period_secs: period_secs,
            ..ServerConfig::default()
        })
        .await
    }

    /// A flood of distinct addresses and tokens leaves nothing behind once their budgets have
    /// refilled: memory follows the last period's clients.
    #[tokio::test]
    async fn state_is_pruned_after_a_flood() {
        let l = limiter(5, 2, 2).await;
        for i in 0..5_000u32 {
            let ip = ClientAddr(std::net::Ipv4Addr::from(i).into());
            let _ = l.check(&l.per_ip, format!("ip:{}", ip.bucket())).await;
            let _ = l.check(&l.per_key, format!("k:{i}")).await;
            for _ in 0..3 {
                l.failed_authentication(&ip).await;
            }
        }
        let flooded = l.tracked();
        assert!(flooded >= 15_000, "{flooded}");
        l.prune();
        assert!(
            l.tracked() >= 15_000,
            "nothing refilled yet, nothing forgotten"
        );
        // A key is forgotten once its budget has fully refilled: at most a period and one
        // interval (2 s + 1 s for the failure budget) after its last request.
        tokio::time::sleep(Duration::from_millis(3200)).await;
        l.prune();
        assert_eq!(l.tracked(), 0);
    }

    #[tokio::test]
    async fn anonymous_stamps_are_counted_per_address_and_none_means_none() {
        let a = ClientAddr([192, 0, 2, 1].into());
        let b = ClientAddr([192, 0, 2, 2].into());
        let l = limiter(100, 3, 60).await.with_anonymous_stamps(3);
        for _ in 0..3 {
            assert!(l.anonymous_stamp(&a).await);
        }
        assert!(
            !l.anonymous_stamp(&a).await,
            "the fourth in an hour needs a challenge"
        );
        assert!(l.anonymous_stamp(&b).await, "another address is untouched");
        let none = limiter(100, 3, 60).await.with_anonymous_stamps(0);
        assert!(
            !none.anonymous_stamp(&a).await,
            "0: every request needs one"
        );
    }

    #[tokio::test]
    async fn failed_authentications_close_the_address_without_spending_on_a_peek() {
        let l = limiter(100, 3, 60).await;
        let a = ClientAddr([192, 0, 2, 1].into());
        let b = ClientAddr([192, 0, 2, 2].into());
        for _ in 0..10 {
            assert!(
                l.may_authenticate(&a).await.is_ok(),
                "peeking spends nothing"
            );
        }
        for _ in 0..3 {
            l.failed_authentication(&a).await;
        }
        assert!(l.may_authenticate(&a).await.is_ok(), "the burst is 3");
        l.failed_authentication(&a).await;
        let wait = l.may_authenticate(&a).await.unwrap_err();
        assert!(
            wait > Duration::from_secs(1) && wait <= Duration::from_secs(20),
            "{wait:?}"
        );
        assert!(
            l.may_authenticate(&b).await.is_ok(),
            "another address is untouched"
        );
    }
}
