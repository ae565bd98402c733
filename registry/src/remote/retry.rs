//! Sorting failed requests into "try again" and "give up", and the bounded
//! retry loop with exponential backoff around one request.

use std::future::Future;

use oci_client::errors::{DigestError, OciDistributionError, OciErrorCode};

use super::error::{Cause, RemoteErrorKind, Request, Status};
use super::transport::RetryPolicy;

/// A failed request, sorted.
#[derive(Debug)]
pub(crate) enum Failure {
    /// Connection trouble, 429 or 5xx: worth another try.
    Transient {
        status: Option<Status>,
        cause: Option<Cause>,
    },
    /// 401: credentials missing, wrong or expired.
    Unauthorized,
    /// 403 / DENIED.
    Denied(Status),
    /// 404 / *_UNKNOWN.
    NotFound,
    /// Any other refusal (4xx, unexpected answers).
    Refused(Status),
    /// Content that does not match its digest.
    Digest { expected: String, actual: String },
    /// The bearer-token endpoint said no.
    Token(String),
    /// More bytes than the descriptor's size.
    Size { expected: u64, actual: u64 },
    /// The local store failed.
    Store(crate::store::StoreError),
    /// A local or configuration problem retrying cannot fix.
    Fatal(Cause),
}

/// Keeps a registry's message short and on one line (error pages can be
/// whole HTML documents).
pub(crate) fn short_message(message: &str) -> String {
    let one_line = message.split_whitespace().collect::<Vec<_>>().join(" ");
    if one_line.chars().count() > 200 {
        let mut s: String = one_line.chars().take(200).collect();
        s.push('…');
        s
    } else {
        one_line
    }
}

fn status(code: Option<u16>, message: &str) -> Status {
    Status {
        code,
        message: short_message(message),
    }
}

fn from_code(code: u16, message: &str) -> Failure {
    let s = status(Some(code), message);
    match code {
        401 => Failure::Unauthorized,
        403 => Failure::Denied(s),
        404 => Failure::NotFound,
        408 | 429 | 500..=599 => Failure::Transient {
            status: Some(s),
            cause: None,
        },
        _ => Failure::Refused(s),
    }
}

/// Whether an I/O error from a response body is the network's fault.
fn io_failure(e: std::io::Error) -> Failure {
    let inner = e.get_ref();
    if let Some(DigestError::VerificationError { expected, actual }) =
        inner.and_then(|i| i.downcast_ref::<DigestError>())
    {
        return Failure::Digest {
            expected: expected.clone(),
            actual: actual.clone(),
        };
    }
    let from_network = inner.is_some_and(|i| i.is::<reqwest::Error>())
        || matches!(
            e.kind(),
            std::io::ErrorKind::ConnectionReset
                | std::io::ErrorKind::ConnectionAborted
                | std::io::ErrorKind::BrokenPipe
                | std::io::ErrorKind::UnexpectedEof
                | std::io::ErrorKind::TimedOut
        );
    if from_network {
        Failure::Transient {
            status: None,
            cause: Some(Cause::Io(e)),
        }
    } else {
        Failure::Fatal(Cause::Io(e))
    }
}

/// Sorts a reqwest error: a status it carries, else connection trouble.
pub(crate) fn classify_http(e: reqwest::Error) -> Failure {
    if let Some(code) = e.status() {
        return from_code(code.as_u16(), "");
    }
    if e.is_builder() || e.is_redirect() {
        return Failure::Fatal(Cause::Http(e.without_url()));
    }
    Failure::Transient {
        status: None,
        cause: Some(Cause::Http(e.without_url())),
    }
}

/// Sorts one of oci-client's errors.
pub(crate) fn classify(err: OciDistributionError) -> Failure {
    use OciDistributionError as E;
    match err {
        // The request is named by the error around it; the URL (with
        // upload session state) only adds noise.
        E::RequestError(e) => match classify_http(e.without_url()) {
            Failure::Fatal(Cause::Http(e)) => Failure::Fatal(Cause::from(E::RequestError(e))),
            Failure::Transient {
                status,
                cause: Some(Cause::Http(e)),
            } => Failure::Transient {
                status,
                cause: Some(Cause::from(E::RequestError(e))),
            },
            other => other,
        },
        E::ServerError { code, message, .. } => from_code(code, &message),
        E::UnauthorizedError { .. } => Failure::Unauthorized,
        E::RegistryError { envelope, .. } => {
            let message = envelope
                .errors
                .iter()
                .map(|e| {
                    let code = serde_json::to_value(&e.code)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_string))
                        .unwrap_or_default();
                    if e.message.is_empty() {
                        code
                    } else {
                        format!("{code} {}", e.message)
                    }
                })
                .collect::<Vec<_>>()
                .join("; ");
            let first = envelope.errors.first().map(|e| &e.code);
            let s = status(None, &message);
            match first {
                Some(OciErrorCode::Unauthorized) => Failure::Unauthorized,
                Some(OciErrorCode::Denied) => Failure::Denied(s),
                Some(OciErrorCode::Toomanyrequests) => Failure::Transient {
                    status: Some(s),
                    cause: None,
                },
                Some(
                    OciErrorCode::ManifestUnknown
                    | OciErrorCode::BlobUnknown
                    | OciErrorCode::NameUnknown
                    | OciErrorCode::NotFound,
                ) => Failure::NotFound,
                _ => Failure::Refused(s),
            }
        }
        E::ImageManifestNotFoundError(_) => Failure::NotFound,
        E::DigestError(DigestError::VerificationError { expected, actual }) => {
            Failure::Digest { expected, actual }
        }
        E::IoError(e) => io_failure(e),
        E::AuthenticationFailure(message) => Failure::Token(short_message(&message)),
        E::SpecViolationError(message) => Failure::Refused(status(None, &message)),
        other => Failure::Fatal(Cause::from(other)),
    }
}

impl Failure {
    /// The error to report once retries are over (or were never worth it).
    /// `what` names the refused action (`blob upload`), `name` the thing a
    /// 404 did not find (`manifest latest`).
    pub(crate) fn into_kind(
        self,
        request: Request,
        attempts: u32,
        registry: &str,
        what: &'static str,
        not_found: (&'static str, &str),
    ) -> RemoteErrorKind {
        match self {
            Failure::Transient { status, cause } => RemoteErrorKind::Unavailable {
                request,
                attempts,
                status,
                cause,
            },
            Failure::Unauthorized => RemoteErrorKind::AuthRequired {
                registry: registry.to_string(),
                request,
            },
            Failure::Denied(status) => RemoteErrorKind::Denied { request, status },
            Failure::NotFound => RemoteErrorKind::NotFound {
                what: not_found.0,
                name: not_found.1.to_string(),
                request,
            },
            Failure::Refused(status) => RemoteErrorKind::Rejected {
                what,
                request,
                status,
            },
            Failure::Digest { expected, actual } => RemoteErrorKind::DigestMismatch {
                expected,
                actual,
                request,
            },
            Failure::Token(message) => RemoteErrorKind::TokenRefused {
                realm: registry.to_string(),
                message,
            },
            Failure::Size { expected, actual } => RemoteErrorKind::SizeMismatch {
                request,
                expected,
                actual,
            },
            Failure::Store(e) => RemoteErrorKind::Store(e),
            Failure::Fatal(cause) => RemoteErrorKind::Transport { request, cause },
        }
    }
}

/// Runs `attempt` until it succeeds, fails for good, or the policy's tries
/// are used up; sleeps with backoff between tries. `on_unauthorized` runs
/// once after the first 401 (to fetch a fresh token) before one more try.
/// Returns the final failure and the number of tries made.
pub(crate) async fn retry<T, F, Fut, A, AFut>(
    policy: &RetryPolicy,
    request: &Request,
    mut attempt: F,
    mut on_unauthorized: A,
) -> Result<T, (Failure, u32)>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, Failure>>,
    A: FnMut() -> AFut,
    AFut: Future<Output = Result<(), Failure>>,
{
    let attempts = policy.attempts.max(1);
    let mut reauthenticated = false;
    let mut n = 0;
    loop {
        n += 1;
        match attempt().await {
            Ok(v) => return Ok(v),
            Err(Failure::Unauthorized) if !reauthenticated => {
                reauthenticated = true;
                tracing::debug!(%request, "401: authenticating again");
                if let Err(f) = on_unauthorized().await {
                    return Err((f, n));
                }
                // The fresh token's try does not count against the budget.
                n -= 1;
            }
            Err(f @ Failure::Transient { .. }) if n < attempts => {
                let delay = policy.delay(n);
                tracing::warn!(
                    %request,
                    attempt = n,
                    of = attempts,
                    delay_ms = delay.as_millis() as u64,
                    reason = %transient_reason(&f),
                    "request failed; retrying"
                );
                tokio::time::sleep(delay).await;
            }
            Err(f) => return Err((f, n)),
        }
    }
}

fn transient_reason(f: &Failure) -> String {
    match f {
        Failure::Transient {
            status: Some(s), ..
        } => s.to_string(),
        Failure::Transient { cause: Some(c), .. } => {
            let mut msg = c.to_string();
            let mut source = std::error::Error::source(c);
            while let Some(s) = source {
                msg.push_str(": ");
                msg.push_str(&s.to_string());
                source = s.source();
            }
            msg
        }
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::time::Duration;

    fn fast() -> RetryPolicy {
        RetryPolicy {
            attempts: 3,
            initial_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(2),
        }
    }

    fn server(code: u16) -> OciDistributionError {
        OciDistributionError::ServerError {
            code,
            url: "http://r/v2/".into(),
            message: "<html>\n  busy\n</html>".into(),
        }
    }

    #[test]
    fn statuses_sort_into_retry_and_give_up() {
        assert!(matches!(classify(server(503)), Failure::Transient { .. }));
        assert!(matches!(classify(server(429)), Failure::Transient { .. }));
        assert!(matches!(classify(server(401)), Failure::Unauthorized));
        assert!(matches!(classify(server(404)), Failure::NotFound));
        match classify(server(413)) {
            Failure::Refused(s) => {
                assert_eq!(s.to_string(), "413 Payload Too Large: <html> busy </html>")
            }
            other => panic!("{other:?}"),
        }
        let envelope: oci_client::errors::OciEnvelope = serde_json::from_str(
            r#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}"#,
        )
        .unwrap();
        let e = OciDistributionError::RegistryError {
            envelope,
            url: String::new(),
        };
        assert!(matches!(classify(e), Failure::NotFound));
    }

    #[tokio::test]
    async fn transient_failures_are_retried_then_reported() {
        let tries = AtomicU32::new(0);
        let req = Request::new("GET", "/v2/");
        let out: Result<(), _> = retry(
            &fast(),
            &req,
            || async {
                tries.fetch_add(1, Ordering::SeqCst);
                Err(classify(server(500)))
            },
            || async { Ok(()) },
        )
        .await;
        let (f, n) = out.unwrap_err();
        assert_eq!(n, 3);
        assert_eq!(tries.load(Ordering::SeqCst), 3);
        let kind = f.into_kind(req, n, "r", "x", ("manifest", "latest"));
        assert!(
            kind.to_string().starts_with(
                "GET /v2/ failed after 3 attempts (last answer: 500 Internal Server Error"
            ),
            "{kind}"
        );
    }

    #[tokio::test]
    async fn success_after_a_failure_and_one_reauthentication() {
        let tries = AtomicU32::new(0);
        let reauth = AtomicU32::new(0);
        let out = retry(
            &fast(),
            &Request::new("GET", "/v2/"),
            || async {
                match tries.fetch_add(1, Ordering::SeqCst) {
                    0 => Err(classify(server(502))),
                    1 => Err(Failure::Unauthorized),
                    _ => Ok(7),
                }
            },
            || async {
                reauth.fetch_add(1, Ordering::SeqCst);
                Ok(())
            },
        )
        .await;
        assert_eq!(out.unwrap(), 7);
        assert_eq!(reauth.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn refusals_are_not_retried() {
        let tries = AtomicU32::new(0);
        let out: Result<(), _> = retry(
            &fast(),
            &Request::new("PUT", "/v2/a/manifests/x"),
            || async {
                tries.fetch_add(1, Ordering::SeqCst);
                Err(classify(server(400)))
            },
            || async { Ok(()) },
        )
        .await;
        assert_eq!(out.unwrap_err().1, 1);
        assert_eq!(tries.load(Ordering::SeqCst), 1);
    }
}
