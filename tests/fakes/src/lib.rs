//! Loopback fakes and test support for warden tests: one loopback HTTP
//! server ([`http::Loopback`]) under every fake, a server that answers with
//! whatever a closure makes of each recorded request ([`http::Responder`],
//! [`http::OkServer`]), and builders for webhook bodies ([`webhook`]).
//!
//! [`openai::FakeOpenAi`] is a scripted OpenAI Chat Completions server on
//! `127.0.0.1`: each request pops the next [`openai::Reply`] and gets it back
//! in the real wire format (JSON or server-sent events), and every request is
//! recorded so tests can assert what the client sent.
//!
//! [`arm::FakeArm`] is a stateful Azure Resource Manager: resource groups,
//! template deployments that progress over polls, what-if, throttling and
//! failure knobs, validated against Azure's published REST examples.
//!
//! [`entra::FakeEntra`] is a Microsoft Entra ID token endpoint (client
//! credentials grant with a client secret) that issues the bearer token a
//! [`arm::FakeArm`] demands, so clients configured like production
//! (`AZURE_AUTHORITY_HOST`, `AZURE_TENANT_ID`, `AZURE_CLIENT_ID`,
//! `AZURE_CLIENT_SECRET`) authenticate over the real wire format.
//!
//! [`otlp::OtlpReceiver`] is an OpenTelemetry collector's OTLP/HTTP trace
//! endpoint that decodes the real protobuf.
//!
//! [`slack::FakeSlack`] is the Slack Web API (`chat.postMessage`,
//! `chat.update`, `response_url`s) with Slack's answers and limits, and
//! [`slack`] signs requests as Slack does; [`teams::FakeTeams`] is a Teams
//! incoming webhook, and [`teams`] signs outgoing-webhook activities.
//!
//! Each of them also serves HTTPS (`start_tls`, `for_arm_tls`) with a
//! certificate from [`tls`]: a test CA whose PEM file a client takes as its
//! extra CA bundle, or a self-signed certificate nobody trusts.
//!
//! ```
//! use warden_fakes::openai::{FakeOpenAi, Reply};
//!
//! let fake = FakeOpenAi::start(vec![Reply::Text("all good".into())]);
//! assert!(fake.base_url().starts_with("http://127.0.0.1:"));
//! assert!(fake.base_url().ends_with("/v1"));
//! assert_eq!(fake.remaining(), 1);
//! assert!(fake.requests().is_empty());
//! ```
#![deny(missing_docs)]

pub mod arm;
pub mod entra;
pub mod http;
pub mod openai;
pub mod otlp;
mod server;
pub mod slack;
pub mod teams;
pub mod tls;
pub mod webhook;
