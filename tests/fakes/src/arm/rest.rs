//! The fake's ARM state machine and REST routes.

use std::collections::BTreeMap;

use hyper::StatusCode;
use hyper::header::{LOCATION, RETRY_AFTER, WWW_AUTHENTICATE};
use serde_json::{Value, json};

use super::wire::{
    Reply, delta, deployment_not_found, empty, error, group_not_found, insert, json_reply,
    method_not_allowed, template_hash, template_resources, validate_deployment,
};
use super::{DEFAULT_DEPLOYMENT_POLLS, RecordedRequest};

const API_VERSIONS: [&str; 2] = ["2021-04-01", "2025-04-01"];
/// Fixed timestamp, so answers are reproducible.
const TIMESTAMP: &str = "2024-01-01T00:00:00.0000000Z";
const DEPLOYMENT_FAILED: &str = "At least one resource deployment operation failed. Please list \
     deployment operations for details. Please see https://aka.ms/arm-deployment-operations for usage details.";

type GroupKey = (String, String);
type DeploymentKey = (String, String, String);

#[derive(Debug)]
struct Group {
    sub: String,
    name: String,
    location: String,
    tags: Option<Value>,
    deleting: bool,
    /// Resources created by successful deployments, by lowercase id.
    resources: BTreeMap<String, (String, Value)>,
}

#[derive(Debug)]
struct Deployment {
    name: String,
    properties: Value,
    polls_needed: u32,
    polls_done: u32,
    failure: Option<(String, String)>,
    correlation_id: String,
}

impl Deployment {
    fn state(&self) -> &'static str {
        match (self.polls_done, &self.failure) {
            (0, _) => "Accepted",
            (done, _) if done < self.polls_needed => "Running",
            (_, Some(_)) => "Failed",
            (_, None) => "Succeeded",
        }
    }

    fn error(&self) -> Option<Value> {
        let (code, message) = self.failure.as_ref()?;
        Some(json!({
            "code": "DeploymentFailed",
            "message": DEPLOYMENT_FAILED,
            "details": [{ "code": code, "message": message }]
        }))
    }
}

#[derive(Debug)]
enum Operation {
    Deployment(DeploymentKey),
    DeleteGroup { key: GroupKey, polls_left: u32 },
    DeleteDeployment { key: DeploymentKey, polls_left: u32 },
    WhatIf { result: Value, polls_left: u32 },
}

/// ARM's 401: the error body plus the `WWW-Authenticate` challenge that
/// tells a client where to get a token.
fn unauthorized(code: &str, message: &str, challenge: &str) -> Reply {
    let mut reply = error(StatusCode::UNAUTHORIZED, code, message);
    insert(
        &mut reply,
        WWW_AUTHENTICATE,
        &format!(
            "Bearer authorization_uri=\"https://login.windows.net/\", \
             error=\"invalid_token\", error_description=\"{challenge}\""
        ),
    );
    reply
}

/// Everything the fake knows; requests are answered under its lock.
#[derive(Debug)]
pub(super) struct State {
    base: String,
    token: String,
    pub(super) requests: Vec<RecordedRequest>,
    pub(super) failures: BTreeMap<String, (String, String)>,
    pub(super) slow: BTreeMap<String, u32>,
    pub(super) throttle: Option<(u32, u64)>,
    pub(super) retry_after: u64,
    groups: BTreeMap<GroupKey, Group>,
    deployments: BTreeMap<DeploymentKey, Deployment>,
    operations: BTreeMap<String, Operation>,
    counter: u64,
}

impl State {
    pub(super) fn new(base: String, token: String) -> Self {
        Self {
            base,
            token,
            requests: Vec::new(),
            failures: BTreeMap::new(),
            slow: BTreeMap::new(),
            throttle: None,
            retry_after: 0,
            groups: BTreeMap::new(),
            deployments: BTreeMap::new(),
            operations: BTreeMap::new(),
            counter: 0,
        }
    }

    pub(super) fn answer(&mut self, req: &RecordedRequest) -> Reply {
        if let Some(rejection) = self.gate(req) {
            return rejection;
        }
        let segs: Vec<&str> = req.path.split('/').filter(|s| !s.is_empty()).collect();
        let lower: Vec<String> = segs.iter().map(|s| s.to_ascii_lowercase()).collect();
        let lower: Vec<&str> = lower.iter().map(String::as_str).collect();
        let method = req.method.as_str();
        match (method, lower.as_slice()) {
            ("GET", ["subscriptions", _, "resourcegroups"]) => self.list_groups(segs[1]),
            (_, ["subscriptions", _, "resourcegroups", _]) => {
                self.group(method, segs[1], segs[3], &req.body)
            }
            ("GET", ["subscriptions", _, "operationresults", _]) => {
                self.poll_location(segs[1], segs[3])
            }
            (
                "GET",
                [
                    "subscriptions",
                    _,
                    "resourcegroups",
                    _,
                    "providers",
                    "microsoft.resources",
                    "deployments",
                ],
            ) => self.list_deployments(segs[1], segs[3]),
            (
                _,
                [
                    "subscriptions",
                    _,
                    "resourcegroups",
                    _,
                    "providers",
                    "microsoft.resources",
                    "deployments",
                    _,
                ],
            ) => self.deployment(method, segs[1], segs[3], segs[7], &req.body),
            (
                "POST",
                [
                    "subscriptions",
                    _,
                    "resourcegroups",
                    _,
                    "providers",
                    "microsoft.resources",
                    "deployments",
                    _,
                    "whatif",
                ],
            ) => self.what_if(segs[1], segs[3], &req.body),
            (
                "GET",
                [
                    "subscriptions",
                    _,
                    "resourcegroups",
                    _,
                    "providers",
                    "microsoft.resources",
                    "deployments",
                    _,
                    "operationstatuses",
                    _,
                ],
            ) => self.poll_deployment(segs[9]),
            _ => error(
                StatusCode::NOT_FOUND,
                "InvalidResourceType",
                &format!("The fake has no route for {method} '{}'.", req.path),
            ),
        }
    }

    /// Authentication, api-version and scripted throttling, in ARM's order.
    fn gate(&mut self, req: &RecordedRequest) -> Option<Reply> {
        match req.header("authorization") {
            None => {
                return Some(unauthorized(
                    "AuthenticationFailed",
                    "Authentication failed. The 'Authorization' header is missing.",
                    "The authentication failed because of missing 'Authorization' header.",
                ));
            }
            Some(value) if value != format!("Bearer {}", self.token) => {
                return Some(unauthorized(
                    "InvalidAuthenticationToken",
                    "The access token is invalid.",
                    "The access token is invalid.",
                ));
            }
            Some(_) => {}
        }
        let version = req
            .query
            .split('&')
            .find_map(|pair| pair.strip_prefix("api-version="));
        match version {
            None => {
                return Some(error(
                    StatusCode::BAD_REQUEST,
                    "MissingApiVersionParameter",
                    "The api-version query parameter (?api-version=) is required for all requests.",
                ));
            }
            Some(v) if !API_VERSIONS.contains(&v) => {
                return Some(error(
                    StatusCode::BAD_REQUEST,
                    "InvalidApiVersionParameter",
                    &format!(
                        "The api-version '{v}' is invalid. The supported versions are '{}'.",
                        API_VERSIONS.join(",")
                    ),
                ));
            }
            Some(_) => {}
        }
        if let Some((left, secs)) = self.throttle.as_mut()
            && *left > 0
        {
            *left -= 1;
            let secs = *secs;
            let mut reply = error(
                StatusCode::TOO_MANY_REQUESTS,
                "TooManyRequests",
                "The request is being throttled as the limit has been reached for operation type - Read_ObservationWindow_00:05:00.",
            );
            insert(&mut reply, RETRY_AFTER, &secs.to_string());
            return Some(reply);
        }
        None
    }

    fn next_id(&mut self) -> u64 {
        self.counter += 1;
        self.counter
    }

    fn retry_after(&self, mut reply: Reply) -> Reply {
        insert(&mut reply, RETRY_AFTER, &self.retry_after.to_string());
        reply
    }

    /// `202 Accepted` + `Location` for `op`.
    fn accepted(&mut self, sub: &str, op: Operation) -> Reply {
        let id = format!("op{}", self.next_id());
        self.operations.insert(id.clone(), op);
        self.location_reply(sub, &id)
    }

    fn location_reply(&self, sub: &str, id: &str) -> Reply {
        let mut reply = empty(StatusCode::ACCEPTED);
        let url = format!(
            "{}/subscriptions/{sub}/operationresults/{id}?api-version={}",
            self.base, API_VERSIONS[0]
        );
        insert(&mut reply, LOCATION, &url);
        self.retry_after(reply)
    }

    fn group(&mut self, method: &str, sub: &str, rg: &str, body: &Value) -> Reply {
        let key = (sub.to_ascii_lowercase(), rg.to_ascii_lowercase());
        match method {
            "PUT" => self.put_group(key, sub, rg, body),
            "GET" => match self.groups.get(&key) {
                Some(group) => json_reply(StatusCode::OK, &group_json(group)),
                None => group_not_found(rg),
            },
            "HEAD" if self.groups.contains_key(&key) => empty(StatusCode::NO_CONTENT),
            "HEAD" => empty(StatusCode::NOT_FOUND),
            "DELETE" => match self.groups.get_mut(&key) {
                Some(group) => {
                    group.deleting = true;
                    self.accepted(sub, Operation::DeleteGroup { key, polls_left: 1 })
                }
                None => group_not_found(rg),
            },
            _ => method_not_allowed(method),
        }
    }

    fn put_group(&mut self, key: GroupKey, sub: &str, rg: &str, body: &Value) -> Reply {
        let valid_name = rg.len() <= 90
            && !rg.ends_with('.')
            && rg
                .chars()
                .all(|c| c.is_alphanumeric() || "-_.()".contains(c));
        if !valid_name {
            return error(
                StatusCode::BAD_REQUEST,
                "InvalidResourceGroup",
                &format!("The provided resource group name '{rg}' has these invalid characters."),
            );
        }
        let Some(location) = body["location"].as_str().filter(|l| !l.is_empty()) else {
            return error(
                StatusCode::BAD_REQUEST,
                "LocationRequired",
                "The location property is required for this definition.",
            );
        };
        let tags = body.get("tags").filter(|t| t.is_object()).cloned();
        if let Some(group) = self.groups.get_mut(&key) {
            if group.deleting {
                return error(
                    StatusCode::CONFLICT,
                    "ResourceGroupBeingDeleted",
                    &format!(
                        "The resource group '{rg}' is in deprovisioning state and cannot perform this operation."
                    ),
                );
            }
            if !group.location.eq_ignore_ascii_case(location) {
                return error(
                    StatusCode::CONFLICT,
                    "InvalidResourceGroupLocation",
                    &format!(
                        "Invalid resource group location '{location}'. The Resource group already exists in location '{}'.",
                        group.location
                    ),
                );
            }
            group.tags = tags;
            return json_reply(StatusCode::OK, &group_json(group));
        }
        let group = Group {
            sub: sub.to_owned(),
            name: rg.to_owned(),
            location: location.to_owned(),
            tags,
            deleting: false,
            resources: BTreeMap::new(),
        };
        let reply = json_reply(StatusCode::CREATED, &group_json(&group));
        self.groups.insert(key, group);
        reply
    }

    fn list_groups(&self, sub: &str) -> Reply {
        let sub = sub.to_ascii_lowercase();
        let value: Vec<Value> = self
            .groups
            .iter()
            .filter(|((s, _), _)| *s == sub)
            .map(|(_, g)| group_json(g))
            .collect();
        json_reply(StatusCode::OK, &json!({ "value": value }))
    }

    fn deployment(&mut self, method: &str, sub: &str, rg: &str, name: &str, body: &Value) -> Reply {
        let group_key = (sub.to_ascii_lowercase(), rg.to_ascii_lowercase());
        if !self.groups.contains_key(&group_key) {
            return group_not_found(rg);
        }
        let key = (group_key.0, group_key.1, name.to_ascii_lowercase());
        match method {
            "PUT" => self.put_deployment(key, sub, rg, name, body),
            "GET" => match self.deployments.get(&key) {
                Some(d) => json_reply(StatusCode::OK, &deployment_json(sub, rg, d)),
                None => deployment_not_found(name),
            },
            "DELETE" if self.deployments.contains_key(&key) => {
                self.accepted(sub, Operation::DeleteDeployment { key, polls_left: 1 })
            }
            "DELETE" => empty(StatusCode::NO_CONTENT),
            _ => method_not_allowed(method),
        }
    }

    fn put_deployment(
        &mut self,
        key: DeploymentKey,
        sub: &str,
        rg: &str,
        name: &str,
        body: &Value,
    ) -> Reply {
        if let Some(reply) = validate_deployment(body) {
            return reply;
        }
        let existing = self.deployments.get(&key);
        if let Some(d) = existing
            && matches!(d.state(), "Accepted" | "Running")
        {
            return error(
                StatusCode::CONFLICT,
                "DeploymentActive",
                &format!(
                    "Unable to edit or replace deployment '{name}': previous deployment is still active."
                ),
            );
        }
        let status = if existing.is_some() {
            StatusCode::OK
        } else {
            StatusCode::CREATED
        };
        let lname = name.to_ascii_lowercase();
        let id = self.next_id();
        let deployment = Deployment {
            name: name.to_owned(),
            properties: body["properties"].clone(),
            polls_needed: self
                .slow
                .get(&lname)
                .copied()
                .unwrap_or(DEFAULT_DEPLOYMENT_POLLS),
            polls_done: 0,
            failure: self.failures.get(&lname).cloned(),
            correlation_id: format!("00000000-0000-0000-0000-{id:012}"),
        };
        let mut reply = json_reply(status, &deployment_json(sub, rg, &deployment));
        self.deployments.insert(key.clone(), deployment);
        let op = format!("op{}", self.next_id());
        self.operations
            .insert(op.clone(), Operation::Deployment(key));
        let url = format!(
            "{}/subscriptions/{sub}/resourcegroups/{rg}/providers/Microsoft.Resources/deployments/{name}/operationStatuses/{op}?api-version={}",
            self.base, API_VERSIONS[0]
        );
        insert(&mut reply, "azure-asyncoperation", &url);
        self.retry_after(reply)
    }

    fn list_deployments(&self, sub: &str, rg: &str) -> Reply {
        let group = (sub.to_ascii_lowercase(), rg.to_ascii_lowercase());
        if !self.groups.contains_key(&group) {
            return group_not_found(rg);
        }
        let value: Vec<Value> = self
            .deployments
            .iter()
            .filter(|((s, r, _), _)| (s, r) == (&group.0, &group.1))
            .map(|(_, d)| deployment_json(sub, rg, d))
            .collect();
        json_reply(StatusCode::OK, &json!({ "value": value }))
    }

    /// `GET .../operationStatuses/{id}`: each poll advances the deployment.
    fn poll_deployment(&mut self, op: &str) -> Reply {
        let Some(Operation::Deployment(key)) = self.operations.get(op) else {
            return error(
                StatusCode::NOT_FOUND,
                "OperationNotFound",
                "The operation was not found.",
            );
        };
        let key = key.clone();
        let Some(d) = self.deployments.get_mut(&key) else {
            return deployment_not_found(&key.2);
        };
        let before = d.state();
        if matches!(before, "Accepted" | "Running") {
            d.polls_done += 1;
        }
        let status = d.state();
        let mut body = json!({ "status": status });
        if let Some(e) = d.error() {
            body["error"] = e;
        }
        if status == "Succeeded" && before != "Succeeded" {
            let resources = template_resources(&key.0, &key.1, &d.properties["template"]);
            if let Some(group) = self.groups.get_mut(&(key.0.clone(), key.1.clone())) {
                for (id, resource) in resources {
                    group
                        .resources
                        .insert(id.to_ascii_lowercase(), (id, resource));
                }
            }
        }
        self.retry_after(json_reply(StatusCode::OK, &body))
    }

    fn what_if(&mut self, sub: &str, rg: &str, body: &Value) -> Reply {
        let key = (sub.to_ascii_lowercase(), rg.to_ascii_lowercase());
        let Some(group) = self.groups.get(&key) else {
            return group_not_found(rg);
        };
        if let Some(reply) = validate_deployment(body) {
            return reply;
        }
        let props = &body["properties"];
        let planned = template_resources(&group.sub, &group.name, &props["template"]);
        let mut changes = Vec::new();
        for (id, after) in &planned {
            changes.push(match group.resources.get(&id.to_ascii_lowercase()) {
                None => json!({ "resourceId": id, "changeType": "Create", "after": after }),
                Some((_, before)) if before == after => {
                    json!({ "resourceId": id, "changeType": "NoChange", "before": before, "after": after })
                }
                Some((_, before)) => json!({
                    "resourceId": id, "changeType": "Modify", "before": before, "after": after,
                    "delta": delta(before, after)
                }),
            });
        }
        if props["mode"] == "Complete" {
            for (lid, (id, before)) in &group.resources {
                if !planned.iter().any(|(p, _)| p.to_ascii_lowercase() == *lid) {
                    changes.push(
                        json!({ "resourceId": id, "changeType": "Delete", "before": before }),
                    );
                }
            }
        }
        let result = json!({ "status": "Succeeded", "properties": { "changes": changes } });
        self.accepted(
            sub,
            Operation::WhatIf {
                result,
                polls_left: 1,
            },
        )
    }

    /// `GET /subscriptions/{sub}/operationresults/{id}`: 202 until done.
    fn poll_location(&mut self, sub: &str, id: &str) -> Reply {
        let Some(op) = self.operations.get_mut(id) else {
            return error(
                StatusCode::NOT_FOUND,
                "OperationNotFound",
                "The operation was not found.",
            );
        };
        let (Operation::DeleteGroup { polls_left, .. }
        | Operation::DeleteDeployment { polls_left, .. }
        | Operation::WhatIf { polls_left, .. }) = op
        else {
            return error(
                StatusCode::NOT_FOUND,
                "OperationNotFound",
                "The operation was not found.",
            );
        };
        if *polls_left > 0 {
            *polls_left -= 1;
            return self.location_reply(sub, id);
        }
        match self.operations.remove(id) {
            Some(Operation::DeleteGroup { key, .. }) => {
                self.groups.remove(&key);
                self.deployments
                    .retain(|(s, r, _), _| (s, r) != (&key.0, &key.1));
                empty(StatusCode::OK)
            }
            Some(Operation::DeleteDeployment { key, .. }) => {
                self.deployments.remove(&key);
                empty(StatusCode::NO_CONTENT)
            }
            Some(Operation::WhatIf { result, .. }) => json_reply(StatusCode::OK, &result),
            _ => error(
                StatusCode::NOT_FOUND,
                "OperationNotFound",
                "The operation was not found.",
            ),
        }
    }
}

fn group_json(g: &Group) -> Value {
    let mut body = json!({
        "id": format!("/subscriptions/{}/resourceGroups/{}", g.sub, g.name),
        "name": g.name,
        "type": "Microsoft.Resources/resourceGroups",
        "location": g.location,
        "properties": { "provisioningState": if g.deleting { "Deleting" } else { "Succeeded" } }
    });
    if let Some(tags) = &g.tags {
        body["tags"] = tags.clone();
    }
    body
}

fn deployment_json(sub: &str, rg: &str, d: &Deployment) -> Value {
    let state = d.state();
    let input = &d.properties;
    let mut props = json!({
        "templateHash": template_hash(&input["template"]),
        "parameters": input.get("parameters").cloned().unwrap_or_else(|| json!({})),
        "mode": input["mode"],
        "provisioningState": state,
        "timestamp": TIMESTAMP,
        "duration": format!("PT{}S", d.polls_done),
        "correlationId": d.correlation_id,
        "providers": [],
        "dependencies": []
    });
    if let Some(link) = input.get("templateLink") {
        let mut link = link.clone();
        link["contentVersion"] = json!("1.0.0.0");
        props["templateLink"] = link;
    }
    if let Some(on_error) = input.get("onErrorDeployment") {
        props["onErrorDeployment"] = on_error.clone();
    }
    if state == "Succeeded" {
        props["outputs"] = json!({});
        props["outputResources"] = template_resources(sub, rg, &input["template"])
            .into_iter()
            .map(|(id, _)| json!({ "id": id }))
            .collect();
    }
    if let Some(e) = d.error().filter(|_| state == "Failed") {
        props["error"] = e;
    }
    json!({
        "id": format!("/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.Resources/deployments/{}", d.name),
        "name": d.name,
        "type": "Microsoft.Resources/deployments",
        "properties": props
    })
}
