//! `kiln login` and `kiln logout`: check credentials against a registry's
//! `/v2/` endpoint (basic, or the bearer challenge → token endpoint flow),
//! then keep them where docker keeps them.

use std::time::Duration;

use super::error::{Cause, Operation, RemoteError, RemoteErrorKind, Request, Status};
use super::retry::{Failure, classify_http, retry, short_message};
use super::transport::RemoteConfig;
use crate::auth::{CredentialSource, Credentials, DockerConfig, normalize_registry};

/// Where a registry's API lives (Docker Hub's is not `docker.io`).
pub(crate) fn api_host(registry: &str) -> &str {
    if registry == "docker.io" {
        "registry-1.docker.io"
    } else {
        registry
    }
}

/// The outcome of a successful login.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginOutcome {
    /// The registry as kiln files it (`host[:port]`, `docker.io`).
    pub registry: String,
    /// Where the credentials were written.
    pub stored_in: CredentialSource,
    /// False when the registry asks for no credentials at all (they were
    /// stored anyway, as docker does).
    pub verified: bool,
}

fn config_file(config: &RemoteConfig) -> Result<DockerConfig, RemoteErrorKind> {
    Ok(match &config.docker_config {
        Some(path) => DockerConfig::load(path)?,
        None => DockerConfig::load_default()?,
    })
}

/// Checks `credentials` against `registry` (`host[:port]`, a URL, or
/// `docker.io`) and, when the registry accepts them, stores them in the
/// docker config file or its credential helper.
pub async fn login(
    config: &RemoteConfig,
    registry: &str,
    credentials: &Credentials,
) -> Result<LoginOutcome, RemoteError> {
    let registry = normalize_registry(registry);
    let err = |kind| RemoteError::new(Operation::Login, registry.clone(), kind);
    let verified = check_credentials(config, &registry, credentials)
        .await
        .map_err(err)?;
    let mut file = config_file(config).map_err(err)?;
    let stored_in = file
        .store(&registry, credentials)
        .map_err(|e| err(RemoteErrorKind::Credentials(e)))?;
    tracing::info!(registry = %registry, user = %credentials.username, stored_in = %stored_in, "logged in");
    Ok(LoginOutcome {
        registry,
        stored_in,
        verified,
    })
}

/// Forgets a registry's credentials; false when there were none.
pub fn logout(config: &RemoteConfig, registry: &str) -> Result<bool, RemoteError> {
    let registry = normalize_registry(registry);
    let err = |kind| RemoteError::new(Operation::Login, registry.clone(), kind);
    let mut file = config_file(config).map_err(err)?;
    file.erase(&registry)
        .map_err(|e| err(RemoteErrorKind::Credentials(e)))
}

fn http_client() -> Result<reqwest::Client, RemoteErrorKind> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(30))
        .read_timeout(Duration::from_secs(60))
        .user_agent(concat!("kiln/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| RemoteErrorKind::ClientSetup(Cause::Http(e)))
}

/// A response's status as a sorted failure, with the registry's message.
async fn failure_of(response: reqwest::Response) -> Failure {
    let code = response.status().as_u16();
    let body = response.text().await.unwrap_or_default();
    let message = registry_message(&body);
    let status = Status {
        code: Some(code),
        message,
    };
    match code {
        401 => Failure::Unauthorized,
        403 => Failure::Denied(status),
        404 => Failure::NotFound,
        408 | 429 | 500..=599 => Failure::Transient {
            status: Some(status),
            cause: None,
        },
        _ => Failure::Refused(status),
    }
}

/// The message of a registry's JSON error document, else the body itself.
fn registry_message(body: &str) -> String {
    #[derive(serde::Deserialize)]
    struct Envelope {
        errors: Vec<Item>,
    }
    #[derive(serde::Deserialize)]
    struct Item {
        #[serde(default)]
        code: String,
        #[serde(default)]
        message: String,
    }
    match serde_json::from_str::<Envelope>(body) {
        Ok(env) => env
            .errors
            .iter()
            .map(|e| format!("{} {}", e.code, e.message).trim().to_string())
            .collect::<Vec<_>>()
            .join("; "),
        Err(_) => short_message(body),
    }
}

/// A challenge from `WWW-Authenticate`.
#[derive(Debug, PartialEq, Eq)]
enum Challenge {
    Basic,
    Bearer {
        realm: String,
        service: Option<String>,
    },
}

fn parse_challenge(header: &str) -> Option<Challenge> {
    let challenges = http_auth::parse_challenges(header).ok()?;
    let mut basic = false;
    for c in &challenges {
        if c.scheme.eq_ignore_ascii_case("bearer") {
            let param = |name: &str| {
                c.params
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case(name))
                    .map(|(_, v)| v.to_unescaped())
            };
            if let Some(realm) = param("realm") {
                return Some(Challenge::Bearer {
                    realm,
                    service: param("service"),
                });
            }
        } else if c.scheme.eq_ignore_ascii_case("basic") {
            basic = true;
        }
    }
    basic.then_some(Challenge::Basic)
}

/// Sends one GET with retries; `Ok` carries any answer the caller must
/// interpret (200 or 401), transient failures are retried.
async fn get(
    config: &RemoteConfig,
    client: &reqwest::Client,
    url: &str,
    request: &Request,
    credentials: Option<&Credentials>,
) -> Result<reqwest::Response, (Failure, u32)> {
    retry(
        &config.retry,
        request,
        || async {
            let mut req = client.get(url);
            if let Some(c) = credentials {
                req = req.basic_auth(&c.username, Some(c.password.expose()));
            }
            let response = req.send().await.map_err(classify_http)?;
            let code = response.status().as_u16();
            if code == 200 || code == 401 {
                Ok(response)
            } else {
                Err(failure_of(response).await)
            }
        },
        || async { Ok(()) },
    )
    .await
}

/// Asks the registry whether it accepts the credentials. Returns false when
/// it needs none.
pub(crate) async fn check_credentials(
    config: &RemoteConfig,
    registry: &str,
    credentials: &Credentials,
) -> Result<bool, RemoteErrorKind> {
    let client = http_client()?;
    let url = format!("{}://{}/v2/", config.scheme(registry), api_host(registry));
    let probe = Request::new("GET", "/v2/");
    let fail = |request: &Request, (f, n): (Failure, u32)| match f {
        Failure::Unauthorized => RemoteErrorKind::BadCredentials {
            request: request.clone(),
            status: Status {
                code: Some(401),
                message: String::new(),
            },
        },
        Failure::Denied(status) => RemoteErrorKind::BadCredentials {
            request: request.clone(),
            status,
        },
        f => f.into_kind(request.clone(), n, registry, "login", ("endpoint", "/v2/")),
    };
    let response = get(config, &client, &url, &probe, None)
        .await
        .map_err(|e| fail(&probe, e))?;
    if response.status().as_u16() == 200 {
        tracing::info!(registry, "the registry needs no credentials");
        return Ok(false);
    }
    let header = response
        .headers()
        .get(reqwest::header::WWW_AUTHENTICATE)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("")
        .to_string();
    match parse_challenge(&header) {
        Some(Challenge::Basic) => {
            let response = get(config, &client, &url, &probe, Some(credentials))
                .await
                .map_err(|e| fail(&probe, e))?;
            if response.status().as_u16() == 200 {
                Ok(true)
            } else {
                Err(fail(&probe, (Failure::Unauthorized, 1)))
            }
        }
        Some(Challenge::Bearer { realm, service }) => {
            let mut token_url =
                reqwest::Url::parse(&realm).map_err(|_| RemoteErrorKind::BadChallenge {
                    challenge: header.clone(),
                })?;
            {
                let mut q = token_url.query_pairs_mut();
                if let Some(service) = &service {
                    q.append_pair("service", service);
                }
                q.append_pair("account", &credentials.username);
                q.append_pair("client_id", "kiln");
            }
            let token_request = Request::new("GET", realm.clone());
            let response = get(
                config,
                &client,
                token_url.as_str(),
                &token_request,
                Some(credentials),
            )
            .await
            .map_err(|e| fail(&token_request, e))?;
            if response.status().as_u16() != 200 {
                return Err(fail(&token_request, (Failure::Unauthorized, 1)));
            }
            #[derive(serde::Deserialize)]
            struct Token {
                token: Option<String>,
                access_token: Option<String>,
            }
            let token: Token = response
                .json()
                .await
                .map_err(|e| RemoteErrorKind::Transport {
                    request: token_request.clone(),
                    cause: Cause::Http(e),
                })?;
            if token
                .token
                .or(token.access_token)
                .is_none_or(|t| t.is_empty())
            {
                return Err(RemoteErrorKind::TokenRefused {
                    realm,
                    message: "the answer holds no token".into(),
                });
            }
            Ok(true)
        }
        None => Err(RemoteErrorKind::BadChallenge { challenge: header }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges_parse() {
        assert_eq!(
            parse_challenge(r#"Basic realm="basic-realm""#),
            Some(Challenge::Basic)
        );
        assert_eq!(
            parse_challenge(
                r#"Bearer realm="https://auth.example.com/token",service="registry.example.com",scope="repository:a:pull""#
            ),
            Some(Challenge::Bearer {
                realm: "https://auth.example.com/token".into(),
                service: Some("registry.example.com".into())
            })
        );
        assert_eq!(parse_challenge("Negotiate"), None);
    }

    #[test]
    fn registry_messages_are_read_from_json_errors() {
        assert_eq!(
            registry_message(
                r#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required","detail":null}]}"#
            ),
            "UNAUTHORIZED authentication required"
        );
        assert_eq!(registry_message("plain\ntext"), "plain text");
    }
}
