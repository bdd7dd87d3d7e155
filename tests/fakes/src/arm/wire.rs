//! ARM wire helpers for the fake: request validation, error bodies, template digests.

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::CONTENT_TYPE;
use hyper::{Response, StatusCode};
use serde_json::{Map, Value, json};

/// What every route answers.
pub(super) type Reply = Response<Full<Bytes>>;

/// Checks a `Deployment` / `DeploymentWhatIf` body the way ARM does before
/// accepting it.
pub(super) fn validate_deployment(body: &Value) -> Option<Reply> {
    let invalid = |message: &str| error(StatusCode::BAD_REQUEST, "InvalidRequestContent", message);
    let Some(props) = body.get("properties").filter(|p| p.is_object()) else {
        return Some(invalid(
            "The request content was invalid and could not be deserialized: 'Required property 'properties' not found in JSON.'.",
        ));
    };
    if !matches!(props["mode"].as_str(), Some("Incremental" | "Complete")) {
        return Some(invalid(
            "The request content was invalid and could not be deserialized: 'Error converting value for 'mode': expected Incremental or Complete.'.",
        ));
    }
    match (props.get("template"), props.get("templateLink")) {
        (None, None) => Some(invalid(
            "The request content was invalid and could not be deserialized: 'Either 'template' or 'templateLink' is required.'.",
        )),
        (Some(template), _)
            if !(template["resources"].is_array() || template["resources"].is_object()) =>
        {
            Some(error(
                StatusCode::BAD_REQUEST,
                "InvalidTemplate",
                "Deployment template validation failed: 'Required property 'resources' not found in JSON. Path '', line 1, position 1.'.",
            ))
        }
        _ => None,
    }
}

/// `(id, resource)` for each literal resource of an inline template.
pub(super) fn template_resources(sub: &str, rg: &str, template: &Value) -> Vec<(String, Value)> {
    let Some(resources) = template["resources"].as_array() else {
        return Vec::new();
    };
    resources
        .iter()
        .filter_map(|r| {
            let kind = r["type"].as_str()?;
            let name = r["name"].as_str()?;
            let id = format!("/subscriptions/{sub}/resourceGroups/{rg}/providers/{kind}/{name}");
            let mut resource = r.clone();
            if let Some(obj) = resource.as_object_mut() {
                obj.insert("id".into(), Value::String(id.clone()));
            }
            Some((id, resource))
        })
        .collect()
}

/// Top-level property changes between two resource bodies.
pub(super) fn delta(before: &Value, after: &Value) -> Vec<Value> {
    let empty = Map::new();
    let b = before.as_object().unwrap_or(&empty);
    let a = after.as_object().unwrap_or(&empty);
    let mut keys: Vec<&String> = b.keys().chain(a.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .filter_map(|k| match (b.get(k), a.get(k)) {
            (None, Some(v)) => {
                Some(json!({ "path": k, "propertyChangeType": "Create", "after": v }))
            }
            (Some(v), None) => {
                Some(json!({ "path": k, "propertyChangeType": "Delete", "before": v }))
            }
            (Some(x), Some(y)) if x != y => {
                Some(json!({ "path": k, "propertyChangeType": "Modify", "before": x, "after": y }))
            }
            _ => None,
        })
        .collect()
}
/// A stable digest of the template (FNV-1a), shaped like ARM's decimal hash.
pub(super) fn template_hash(template: &Value) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in template.to_string().bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash.to_string()
}

pub(super) fn group_not_found(rg: &str) -> Reply {
    error(
        StatusCode::NOT_FOUND,
        "ResourceGroupNotFound",
        &format!("Resource group '{rg}' could not be found."),
    )
}

pub(super) fn deployment_not_found(name: &str) -> Reply {
    error(
        StatusCode::NOT_FOUND,
        "DeploymentNotFound",
        &format!("Deployment '{name}' could not be found."),
    )
}

pub(super) fn method_not_allowed(method: &str) -> Reply {
    error(
        StatusCode::METHOD_NOT_ALLOWED,
        "HttpMethodNotSupported",
        &format!("The HTTP method '{method}' is not supported for this resource."),
    )
}

/// An ARM error body `{"error":{"code","message"}}`.
pub(super) fn error(status: StatusCode, code: &str, message: &str) -> Reply {
    let mut reply = json_reply(
        status,
        &json!({ "error": { "code": code, "message": message } }),
    );
    insert(&mut reply, "x-ms-failure-cause", "gateway");
    reply
}

pub(super) fn json_reply(status: StatusCode, body: &Value) -> Reply {
    let mut reply = Response::new(Full::new(Bytes::from(body.to_string())));
    *reply.status_mut() = status;
    insert(&mut reply, CONTENT_TYPE, "application/json; charset=utf-8");
    reply
}

pub(super) fn empty(status: StatusCode) -> Reply {
    let mut reply = Response::new(Full::new(Bytes::new()));
    *reply.status_mut() = status;
    reply
}

pub(super) fn insert<K: hyper::header::IntoHeaderName>(reply: &mut Reply, name: K, value: &str) {
    if let Ok(value) = hyper::header::HeaderValue::from_str(value) {
        reply.headers_mut().insert(name, value);
    }
}
