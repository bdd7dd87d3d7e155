//! Microsoft Teams webhooks on `127.0.0.1` over HTTPS: an incoming
//! webhook that takes cards as a Teams channel connector does, and the
//! messages an outgoing webhook sends, signed as Teams signs them.
//!
//! [`FakeTeams`] accepts `POST`s of a message with an Adaptive Card (or a
//! `text`) at its webhook URL and answers `1`, as the connector does;
//! anything else gets the connector's 400. [`outgoing`] builds the activity
//! Teams posts when someone mentions an outgoing webhook, and
//! [`hmac_header`] its `Authorization: HMAC <base64>`.
//!
//! ```
//! use warden_fakes::teams::{hmac_header, outgoing};
//!
//! let body = outgoing("00000000-0000-0000-0000-00000000c0de", "Carol", "<at>warden</at> status", "2026-12-05T10:00:00.000Z");
//! assert!(body.contains("\"aadObjectId\":\"00000000-0000-0000-0000-00000000c0de\""));
//! assert!(hmac_header("c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0", &body).starts_with("HMAC "));
//! ```

use std::sync::{Arc, Mutex};

use base64::Engine as _;
use hmac::{Hmac, Mac as _};
use serde_json::{Value, json};
use sha2::Sha256;

use crate::http::{Responder, Response};
use crate::tls::ServerCert;

/// The fake incoming webhook; stops when dropped.
#[derive(Debug)]
pub struct FakeTeams {
    server: Responder,
    cards: Arc<Mutex<Vec<Value>>>,
}

/// The webhook's path, shaped like a real one (tenant, connector, ids).
const PATH: &str = "/webhookb2/0d1e2f30-0000-4000-8000-000000000001@72f988bf-0000-4000-8000-000000000002/IncomingWebhook/5f1c0ffee0ddba11/0d1e2f30-0000-4000-8000-000000000003";

impl FakeTeams {
    /// Serve HTTPS with `cert`.
    pub fn start_tls(cert: &ServerCert) -> FakeTeams {
        let cards = Arc::new(Mutex::new(Vec::new()));
        let shared = Arc::clone(&cards);
        let server = Responder::start_tls(cert, move |seen| {
            if seen.method != "POST" || seen.path != PATH {
                return Response::text(404, "Not Found");
            }
            let Ok(body) = serde_json::from_str::<Value>(&seen.body) else {
                return Response::text(400, "Bad payload received by generic incoming webhook.");
            };
            let card = body["attachments"][0]["contentType"]
                == "application/vnd.microsoft.card.adaptive"
                && body["attachments"][0]["content"]["type"] == "AdaptiveCard";
            let text = body["text"].as_str().is_some_and(|t| !t.is_empty());
            if body["type"] != "message" || !(card || text) {
                return Response::text(400, "Summary or Text is required.");
            }
            if let Ok(mut c) = shared.lock() {
                c.push(body);
            }
            Response::text(200, "1")
        });
        FakeTeams { server, cards }
    }

    /// The webhook URL (a secret in real life).
    pub fn webhook_url(&self) -> String {
        self.server.url(PATH)
    }

    /// Every message the webhook took, in order.
    pub fn cards(&self) -> Vec<Value> {
        match self.cards.lock() {
            Ok(c) => c.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    /// The text of every TextBlock and fact of the `n`th card, joined by newlines.
    pub fn card_text(&self, n: usize) -> String {
        let cards = self.cards();
        let Some(card) = cards.get(n) else {
            return String::new();
        };
        let mut out = Vec::new();
        for block in card["attachments"][0]["content"]["body"]
            .as_array()
            .into_iter()
            .flatten()
        {
            if let Some(t) = block["text"].as_str() {
                out.push(t.to_owned());
            }
            for f in block["facts"].as_array().into_iter().flatten() {
                out.push(format!(
                    "{}: {}",
                    f["title"].as_str().unwrap_or_default(),
                    f["value"].as_str().unwrap_or_default()
                ));
            }
        }
        out.join("\n")
    }
}

/// The activity Teams posts to an outgoing webhook when the user with Entra
/// object id `aad_object_id` writes `text` (the mention included, as
/// `<at>name</at>`) at `timestamp` (RFC 3339).
pub fn outgoing(aad_object_id: &str, name: &str, text: &str, timestamp: &str) -> String {
    json!({
        "type": "message",
        "id": "1733392800000",
        "timestamp": timestamp,
        "localTimestamp": timestamp,
        "serviceUrl": "https://smba.trafficmanager.net/emea/",
        "channelId": "msteams",
        "from": {
            "id": "29:1XJKJMvc5GBtc2JwZq0oj8tHZmzrQgFmB39ATiQWA85gQtHieVkKilBZ9XHoq9j7Zaqt7CZ-NJWi7me2kHTL3Bw",
            "name": name,
            "aadObjectId": aad_object_id,
        },
        "conversation": {
            "isGroup": true,
            "id": "19:253b1f341670408fb6fcb9b2b5d3ad6e@thread.skype;messageid=1733392800000",
            "name": null,
        },
        "recipient": {"id": "28:c9e8c047-2a74-40a2-b28a-b162d5f5327c", "name": "warden"},
        "textFormat": "plain",
        "attachmentLayout": "list",
        "text": text,
        "attachments": [{"contentType": "text/html", "content": format!("<div>{text}</div>")}],
        "entities": [{"type": "clientInfo", "locale": "en-US", "country": "US", "platform": "Web"}],
        "channelData": {
            "teamsChannelId": "19:253b1f341670408fb6fcb9b2b5d3ad6e@thread.skype",
            "teamsTeamId": "19:712c61d0ef384e5fa681ba90ca943398@thread.skype",
            "channel": {"id": "19:253b1f341670408fb6fcb9b2b5d3ad6e@thread.skype"},
            "team": {"id": "19:712c61d0ef384e5fa681ba90ca943398@thread.skype"},
            "tenant": {"id": "72f988bf-86f1-41af-91ab-2d7cd011db47"},
        },
    })
    .to_string()
}

/// `HMAC <base64>`: HMAC-SHA256 of `body` under the base64-decoded
/// security token, as Teams signs an outgoing-webhook request.
pub fn hmac_header(security_token: &str, body: &str) -> String {
    let key = base64::engine::general_purpose::STANDARD
        .decode(security_token)
        .unwrap_or_default();
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(&key) else {
        return String::new();
    };
    mac.update(body.as_bytes());
    format!(
        "HMAC {}",
        base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
    )
}
