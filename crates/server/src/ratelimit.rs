//! Rate limits (GCRA) by route class: per API key for authenticated calls, per client IP
//! otherwise, and a stricter per-IP class for the public code verification routes; in-process
//! (governor) or shared through Redis (one Lua script, Redis' own clock). A Redis outage
//! degrades to the in-process limiter of each instance: still limited, never a 500.

use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use sha2::{Digest, Sha256};

use pixseal_service::{RateLimitBackend, ServerConfig};

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
    local: Option<DefaultKeyedRateLimiter<String>>,
}

impl Rule {
    fn new(limit: u32, period: Duration) -> Self {
        let local = NonZeroU32::new(limit).and_then(|n| {
            let per = period.checked_div(n.get())?;
            Quota::with_period(per).map(|q| RateLimiter::keyed(q.allow_burst(n)))
        });
        Rule { limit, local }
    }
}

/// The configured limiter.
pub struct Limiter {
    per_key: Rule,
    per_ip: Rule,
    verify_per_ip: Rule,
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
            let conn = match redis::Client::open(c.rate_limit_redis_url.as_str()) {
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
            let interval_ms = (self.period.as_millis() as u64 / rule.limit as u64).max(1);
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
}

impl Limiter {
    /// One check against the per-key rule (benchmarks and tests).
    pub async fn check_key(&self, key: &str) -> Result<(), Duration> {
        self.check(&self.per_key, format!("k:{key}")).await
    }
}

/// The public routes that answer whether a code is valid: the class guessing would target.
pub const VERIFY_ROUTES: [&str; 2] = ["/v1/codes/verify", "/v1/codes/live/verify"];

fn client_ip(req: &Request) -> String {
    let ip = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip().to_string())
        .unwrap_or_default();
    hex::encode(&Sha256::digest(ip.as_bytes())[..12])
}

/// Middleware: every route but health, readiness and metrics.
pub async fn limit(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let path = req.uri().path();
    if matches!(path, "/healthz" | "/readyz" | "/metrics") {
        return next.run(req).await;
    }
    let bearer = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let verdict = match bearer {
        // Verification is public: counted by IP, so made-up bearer tokens buy no fresh budget.
        _ if VERIFY_ROUTES.contains(&path) => {
            state
                .limiter
                .check(
                    &state.limiter.verify_per_ip,
                    format!("v:{}", client_ip(&req)),
                )
                .await
        }
        // Keyed by a hash of the presented token (valid or not): no database read before limiting.
        Some(token) => {
            state
                .limiter
                .check(
                    &state.limiter.per_key,
                    format!(
                        "k:{}",
                        hex::encode(&Sha256::digest(token.trim().as_bytes())[..12])
                    ),
                )
                .await
        }
        None => {
            state
                .limiter
                .check(&state.limiter.per_ip, format!("ip:{}", client_ip(&req)))
                .await
        }
    };
    match verdict {
        Ok(()) => next.run(req).await,
        Err(wait) => {
            let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            let mut r = ApiError::new(
                axum::http::StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                format!("too many requests; retry after {secs} s"),
            )
            .into_response();
            if let Ok(v) = HeaderValue::from_str(&secs.max(1).to_string()) {
                r.headers_mut().insert(header::RETRY_AFTER, v);
            }
            r
        }
    }
}
