//! Long-running operation polling, following the ARM async-operation
//! contract: `Azure-AsyncOperation` first, then `Location`, then the
//! resource's own `provisioningState`.

use std::time::Instant;

use azure_core::{Method, Url};
use azure_mgmt_resources::package_resources_2021_04::models as wire;
use serde_json::Value;

use crate::client::{AzureArm, Reply};
use crate::error::ArmError;
use crate::model::{ErrorDetail, OperationState};

/// What is being polled; each has its own progress signal.
enum Target {
    /// `{"status": "InProgress" | "Succeeded" | "Failed" | "Canceled", "error"}`.
    AsyncOperation(Url),
    /// 202 while running, then the final answer (or an error status).
    Location(Url),
    /// The resource itself, via `properties.provisioningState`.
    Resource(Url),
}

impl Target {
    fn url(&self) -> &Url {
        match self {
            Self::AsyncOperation(u) | Self::Location(u) | Self::Resource(u) => u,
        }
    }
}

enum Progress {
    Done(OperationState),
    Pending(String),
}

impl AzureArm {
    /// Follows an operation from its `initial` answer to a terminal state or
    /// `deadline`. `resource_url` is read once an async operation succeeds
    /// (PUTs), so `Succeeded` carries the final resource.
    pub(crate) async fn drive(
        &self,
        method: Method,
        request_url: &Url,
        initial: Reply,
        resource_url: Option<&Url>,
        deadline: Instant,
    ) -> Result<OperationState, ArmError> {
        if !initial.is_success() {
            return Err(initial.into_error(method, request_url));
        }
        let mut wait = self
            .retry_after(&initial.headers)
            .unwrap_or(self.default_poll_interval);
        let body = json_or_null(&initial.body);
        let mut last_status = provisioning_state(&body).unwrap_or_else(|| "Accepted".into());
        let mut target = if let Some(raw) = initial.header("azure-asyncoperation") {
            Target::AsyncOperation(self.operation_url(raw)?)
        } else if let Some(raw) = initial.header("location").filter(|_| initial.status == 202) {
            Target::Location(self.operation_url(raw)?)
        } else {
            match terminal(&last_status, &body, &body["properties"]["error"]) {
                Some(done) => return Ok(done),
                None if initial.status == 202 || provisioning_state(&body).is_none() => {
                    // Accepted with nothing to poll: the request itself is the
                    // only thing we know succeeded.
                    return Ok(OperationState::Succeeded { resource: body });
                }
                None => Target::Resource(resource_url.unwrap_or(request_url).clone()),
            }
        };

        loop {
            let now = Instant::now();
            if now >= deadline {
                return Ok(running(&target, last_status));
            }
            tokio::time::sleep(wait.min(deadline - now)).await;
            let reply = match self
                .send(Method::Get, target.url(), None, Some(deadline))
                .await
            {
                Ok(reply) => reply,
                // Throttled polling says nothing about the operation itself.
                Err(ArmError::Throttled { .. }) => return Ok(running(&target, last_status)),
                Err(e) => return Err(e),
            };
            wait = self
                .retry_after(&reply.headers)
                .unwrap_or(self.default_poll_interval);
            let progress = match &target {
                Target::AsyncOperation(url) => {
                    self.async_operation(url, reply, resource_url, deadline)
                        .await?
                }
                Target::Location(url) => {
                    if reply.status == 202 {
                        if let Some(raw) = reply.header("location") {
                            target = Target::Location(self.operation_url(raw)?);
                        }
                        Progress::Pending("InProgress".into())
                    } else {
                        location_result(url, reply)?
                    }
                }
                Target::Resource(url) => {
                    if !reply.is_success() {
                        return Err(reply.into_error(Method::Get, url));
                    }
                    let body = json_or_null(&reply.body);
                    let state = provisioning_state(&body).unwrap_or_else(|| "Succeeded".into());
                    match terminal(&state, &body, &body["properties"]["error"]) {
                        Some(done) => Progress::Done(done),
                        None => Progress::Pending(state),
                    }
                }
            };
            match progress {
                Progress::Done(state) => return Ok(state),
                Progress::Pending(status) => last_status = status,
            }
        }
    }

    async fn async_operation(
        &self,
        url: &Url,
        reply: Reply,
        resource_url: Option<&Url>,
        deadline: Instant,
    ) -> Result<Progress, ArmError> {
        if !reply.is_success() {
            return Err(reply.into_error(Method::Get, url));
        }
        let body = json_or_null(&reply.body);
        let status = body["status"].as_str().unwrap_or("InProgress").to_owned();
        if !status.eq_ignore_ascii_case("succeeded") {
            return Ok(match terminal(&status, &Value::Null, &body["error"]) {
                Some(done) => Progress::Done(done),
                None => Progress::Pending(status),
            });
        }
        let Some(resource_url) = resource_url else {
            return Ok(Progress::Done(OperationState::Succeeded {
                resource: Value::Null,
            }));
        };
        let final_reply = self
            .send(Method::Get, resource_url, None, Some(deadline))
            .await?;
        if !final_reply.is_success() {
            return Err(final_reply.into_error(Method::Get, resource_url));
        }
        Ok(Progress::Done(OperationState::Succeeded {
            resource: json_or_null(&final_reply.body),
        }))
    }
}

/// A `Location` poll that is no longer 202: the result, or the error status
/// that reports the operation's failure.
fn location_result(url: &Url, reply: Reply) -> Result<Progress, ArmError> {
    if !reply.is_success() {
        let detail = reply.error_detail();
        tracing::debug!(%url, status = reply.status, code = %detail.code, "arm operation failed");
        return Ok(Progress::Done(failed(detail)));
    }
    let body = json_or_null(&reply.body);
    // what-if results carry their own `status`.
    let status = body["status"].as_str().unwrap_or("Succeeded").to_owned();
    Ok(Progress::Done(
        terminal(&status, &body, &body["error"])
            .unwrap_or(OperationState::Succeeded { resource: body }),
    ))
}

/// `Some` for the terminal states `Succeeded`, `Failed` and `Canceled`.
fn terminal(status: &str, body: &Value, error: &Value) -> Option<OperationState> {
    match status.to_ascii_lowercase().as_str() {
        "succeeded" => Some(OperationState::Succeeded {
            resource: body.clone(),
        }),
        "failed" | "canceled" | "cancelled" => {
            let mut detail = serde_json::from_value::<wire::ErrorResponse>(error.clone())
                .map(ErrorDetail::from)
                .unwrap_or_default();
            if detail.code.is_empty() {
                detail.code = status.to_owned();
            }
            Some(failed(detail))
        }
        _ => None,
    }
}

fn failed(detail: ErrorDetail) -> OperationState {
    OperationState::Failed {
        code: detail.code,
        message: detail.message,
        details: detail.details,
    }
}

fn running(target: &Target, last_status: String) -> OperationState {
    OperationState::Running {
        operation_url: target.url().to_string(),
        last_status,
    }
}

fn provisioning_state(body: &Value) -> Option<String> {
    body["properties"]["provisioningState"]
        .as_str()
        .map(str::to_owned)
}

fn json_or_null(body: &[u8]) -> Value {
    serde_json::from_slice(body).unwrap_or(Value::Null)
}
