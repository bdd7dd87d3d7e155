//! A fake Microsoft Entra ID token endpoint: the OAuth 2.0 client
//! credentials grant (`POST /{tenant}/oauth2/v2.0/token`, form body) with a
//! client secret, as `azure_identity`'s `ClientSecretCredential` speaks it,
//! or a federated `client_assertion`, as its `WorkloadIdentityCredential`
//! does.
//!
//! One app registration is known: the tenant, client id, secret and trusted
//! federated token below.
//! A correct request for the one known scope gets the configured access
//! token; every mistake gets Entra's error body
//! (`{"error","error_description":"AADSTS...","error_codes",...}`) with the
//! status Entra uses for it. [`FakeEntra::for_arm`] issues exactly the
//! bearer token a [`FakeArm`] demands, so a client reaches the ARM fake only
//! by authenticating first.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{CACHE_CONTROL, CONTENT_TYPE};
use hyper::{Request, Response, StatusCode};
use serde_json::json;

use crate::arm::FakeArm;
use crate::server::{Loopback, bind};
use crate::tls::ServerCert;

/// Directory (tenant) id of the fake's one app registration.
pub const TENANT_ID: &str = "72f988bf-0000-4000-8000-00000000e17a";
/// Application (client) id of the fake's one app registration.
pub const CLIENT_ID: &str = "5b0c8e6d-0000-4000-8000-0000000c11e7";
/// The app registration's client secret.
pub const CLIENT_SECRET: &str = "fake~client~secret";
/// The federated token (a Kubernetes service account token in AKS) the app
/// trusts for workload identity, sent as `client_assertion`.
pub const FEDERATED_TOKEN: &str = "fake.federated.assertion";
/// `expires_in` of issued tokens, in seconds (Entra's usual value).
pub const EXPIRES_IN: u64 = 3599;

/// Fixed timestamp in error bodies, so answers are reproducible.
const TIMESTAMP: &str = "2024-01-01 00:00:00Z";
const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
const TRACE_ID: &str = "00000000-0000-0000-0000-00000000ace0";

/// A token request the fake received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRequest {
    /// HTTP method, e.g. `POST`.
    pub method: String,
    /// Path, e.g. `/{tenant}/oauth2/v2.0/token`.
    pub path: String,
    /// `Content-Type` header, if any.
    pub content_type: Option<String>,
    /// Whether an `Authorization` header was sent (client secrets belong in
    /// the body with `client_secret_post`, never in a header here).
    pub has_authorization: bool,
    /// The form body's fields (the last value of a repeated field wins).
    pub form: BTreeMap<String, String>,
}

struct State {
    access_token: String,
    scope: String,
    requests: Vec<TokenRequest>,
}

/// A running fake Entra ID token endpoint on `127.0.0.1`; it stops when dropped.
///
/// ```
/// use warden_fakes::arm::FakeArm;
/// use warden_fakes::entra::{FakeEntra, TENANT_ID};
///
/// let arm = FakeArm::start();
/// let entra = FakeEntra::for_arm(&arm);
/// assert!(entra.authority_host().starts_with("http://127.0.0.1:"));
/// assert_eq!(
///     entra.token_url(),
///     format!("{}/{TENANT_ID}/oauth2/v2.0/token", entra.authority_host())
/// );
/// assert_eq!(entra.scope(), format!("{}/.default", arm.endpoint()));
/// assert!(entra.requests().is_empty());
/// ```
#[derive(Debug)]
pub struct FakeEntra {
    addr: SocketAddr,
    scheme: &'static str,
    scope: String,
    state: Arc<Mutex<State>>,
    _server: Loopback,
}

impl std::fmt::Debug for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("State")
            .field("scope", &self.scope)
            .field("requests", &self.requests.len())
            .finish_non_exhaustive()
    }
}

impl FakeEntra {
    /// Starts a token endpoint that issues `access_token` for `scope`
    /// (e.g. `https://management.azure.com/.default`) to the app
    /// registration [`TENANT_ID`] / [`CLIENT_ID`], authenticated with
    /// [`CLIENT_SECRET`] or [`FEDERATED_TOKEN`].
    pub fn start(access_token: &str, scope: &str) -> Self {
        Self::spawn(access_token, scope, None)
    }

    /// Starts a token endpoint that issues `arm`'s bearer token for the
    /// scope `{arm.endpoint()}/.default`, the scope an ARM client asks for.
    pub fn for_arm(arm: &FakeArm) -> Self {
        Self::start(arm.token(), &format!("{}/.default", arm.endpoint()))
    }

    /// [`FakeEntra::for_arm`] over HTTPS with `cert`: the authority host
    /// starts with `https://127.0.0.1:`.
    ///
    /// ```
    /// use warden_fakes::arm::FakeArm;
    /// use warden_fakes::entra::FakeEntra;
    /// use warden_fakes::tls::TestCa;
    ///
    /// let cert = TestCa::new().server_cert(&["127.0.0.1"]);
    /// let arm = FakeArm::start_tls(&cert);
    /// let entra = FakeEntra::for_arm_tls(&arm, &cert);
    /// assert!(entra.authority_host().starts_with("https://127.0.0.1:"));
    /// assert_eq!(entra.scope(), format!("{}/.default", arm.endpoint()));
    /// ```
    pub fn for_arm_tls(arm: &FakeArm, cert: &ServerCert) -> Self {
        let scope = format!("{}/.default", arm.endpoint());
        Self::spawn(arm.token(), &scope, Some(cert))
    }

    fn spawn(access_token: &str, scope: &str, cert: Option<&ServerCert>) -> Self {
        let (listener, addr) = bind();
        let state = Arc::new(Mutex::new(State {
            access_token: access_token.to_owned(),
            scope: scope.to_owned(),
            requests: Vec::new(),
        }));
        let server = Loopback::serve_tls("fake-entra", listener, cert, Arc::clone(&state), handle);
        Self {
            addr,
            scheme: if cert.is_some() { "https" } else { "http" },
            scope: scope.to_owned(),
            state,
            _server: server,
        }
    }

    /// Authority host, `http://127.0.0.1:PORT` (no trailing slash; `https`
    /// when started with [`FakeEntra::for_arm_tls`]): the value for
    /// `AZURE_AUTHORITY_HOST`.
    pub fn authority_host(&self) -> String {
        format!("{}://{}", self.scheme, self.addr)
    }

    /// `{authority_host}/{TENANT_ID}/oauth2/v2.0/token`.
    pub fn token_url(&self) -> String {
        format!("{}/{TENANT_ID}/oauth2/v2.0/token", self.authority_host())
    }

    /// The one scope tokens are issued for.
    pub fn scope(&self) -> &str {
        &self.scope
    }

    /// The tenant id, [`TENANT_ID`].
    pub fn tenant_id(&self) -> &'static str {
        TENANT_ID
    }

    /// The client id, [`CLIENT_ID`].
    pub fn client_id(&self) -> &'static str {
        CLIENT_ID
    }

    /// The client secret, [`CLIENT_SECRET`].
    pub fn client_secret(&self) -> &'static str {
        CLIENT_SECRET
    }

    /// Every request received so far, in order (including rejected ones).
    pub fn requests(&self) -> Vec<TokenRequest> {
        self.state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .requests
            .clone()
    }
}

async fn handle(
    req: Request<Incoming>,
    state: Arc<Mutex<State>>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let header = |name| {
        req.headers()
            .get(name)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
    };
    let content_type = header(CONTENT_TYPE);
    let has_authorization = req.headers().contains_key(hyper::header::AUTHORIZATION);
    let method = req.method().to_string();
    let path = req.uri().path().to_owned();
    let body = match req.into_body().collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => Bytes::new(),
    };
    let form: BTreeMap<String, String> = form_urlencoded::parse(&body).into_owned().collect();
    let recorded = TokenRequest {
        method,
        path,
        content_type,
        has_authorization,
        form,
    };
    let mut state = state.lock().unwrap_or_else(PoisonError::into_inner);
    state.requests.push(recorded.clone());
    Ok(answer(&state, &recorded))
}

/// Entra's checks, in the order it reports them.
fn answer(state: &State, req: &TokenRequest) -> Response<Full<Bytes>> {
    let segments: Vec<&str> = req.path.split('/').filter(|s| !s.is_empty()).collect();
    let tenant = match segments.as_slice() {
        [tenant, "oauth2", "v2.0", "token"] => *tenant,
        _ => {
            return reply(
                StatusCode::NOT_FOUND,
                &json!({"error": "not_found", "error_description": format!("No route for {}", req.path)}),
            );
        }
    };
    if req.method != "POST" {
        return aadsts(
            StatusCode::METHOD_NOT_ALLOWED,
            "invalid_request",
            900_561,
            &format!(
                "The endpoint only accepts POST requests. Received a {} request.",
                req.method
            ),
        );
    }
    if !tenant.eq_ignore_ascii_case(TENANT_ID) {
        return aadsts(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            90_002,
            &format!(
                "Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID \
                 and are signing into the correct cloud."
            ),
        );
    }
    let is_form = req.content_type.as_deref().is_some_and(|ct| {
        ct.split(';')
            .next()
            .is_some_and(|m| m.trim() == "application/x-www-form-urlencoded")
    });
    if !is_form {
        return aadsts(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            900_144,
            "The request body must contain the following parameter: 'grant_type'.",
        );
    }
    let field = |name: &str| req.form.get(name).map(String::as_str);
    match field("grant_type") {
        None => {
            return aadsts(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                900_144,
                "The request body must contain the following parameter: 'grant_type'.",
            );
        }
        Some("client_credentials") => {}
        Some(other) => {
            return aadsts(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                70_003,
                &format!("The app requested an unsupported grant type '{other}'."),
            );
        }
    }
    match field("client_id") {
        None => {
            return aadsts(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                900_144,
                "The request body must contain the following parameter: 'client_id'.",
            );
        }
        Some(id) if !id.eq_ignore_ascii_case(CLIENT_ID) => {
            return aadsts(
                StatusCode::BAD_REQUEST,
                "unauthorized_client",
                700_016,
                &format!(
                    "Application with identifier '{id}' was not found in the directory '{tenant}'."
                ),
            );
        }
        Some(_) => {}
    }
    if let Some(kind) = field("client_assertion_type") {
        if kind != JWT_BEARER {
            return aadsts(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                7_000_216,
                "'client_assertion', 'client_secret' or 'request' is required for the \
                 'client_credentials' grant type.",
            );
        }
        if field("client_assertion") != Some(FEDERATED_TOKEN) {
            return aadsts(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                70_021,
                "No matching federated identity record found for presented assertion.",
            );
        }
    } else {
        match field("client_secret") {
            None => {
                return aadsts(
                    StatusCode::UNAUTHORIZED,
                    "invalid_client",
                    7_000_218,
                    "The request body must contain the following parameter: 'client_assertion' \
                     or 'client_secret'.",
                );
            }
            Some(secret) if secret != CLIENT_SECRET => {
                return aadsts(
                    StatusCode::UNAUTHORIZED,
                    "invalid_client",
                    7_000_215,
                    &format!(
                        "Invalid client secret provided. Ensure the secret being sent in the \
                         request is the client secret value, not the client secret ID, for a \
                         secret added to app '{CLIENT_ID}'."
                    ),
                );
            }
            Some(_) => {}
        }
    }
    match field("scope") {
        None => aadsts(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            900_144,
            "The request body must contain the following parameter: 'scope'.",
        ),
        Some(scope) if !scope.ends_with("/.default") => aadsts(
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            1_002_012,
            &format!(
                "The provided value for scope {scope} is not valid. Client credential flows must \
                 have a scope value with /.default suffixed to the resource identifier \
                 (application ID URI)."
            ),
        ),
        Some(scope) if scope != state.scope => aadsts(
            StatusCode::BAD_REQUEST,
            "invalid_resource",
            500_011,
            &format!(
                "The resource principal named {} was not found in the tenant named {tenant}.",
                scope.trim_end_matches("/.default")
            ),
        ),
        Some(_) => reply(
            StatusCode::OK,
            &json!({
                "token_type": "Bearer",
                "expires_in": EXPIRES_IN,
                "ext_expires_in": EXPIRES_IN,
                "access_token": state.access_token,
            }),
        ),
    }
}

/// Entra's error body for `AADSTS{code}: {message}`.
fn aadsts(status: StatusCode, error: &str, code: u32, message: &str) -> Response<Full<Bytes>> {
    reply(
        status,
        &json!({
            "error": error,
            "error_description": format!(
                "AADSTS{code}: {message} Trace ID: {TRACE_ID} Correlation ID: {TRACE_ID} Timestamp: {TIMESTAMP}"
            ),
            "error_codes": [code],
            "timestamp": TIMESTAMP,
            "trace_id": TRACE_ID,
            "correlation_id": TRACE_ID,
            "error_uri": format!("https://login.microsoftonline.com/error?code={code}"),
        }),
    )
}

fn reply(status: StatusCode, body: &serde_json::Value) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body.to_string())));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json; charset=utf-8"),
    );
    headers.insert(
        CACHE_CONTROL,
        hyper::header::HeaderValue::from_static("no-store, no-cache"),
    );
    response
}
