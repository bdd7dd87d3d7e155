//! The `llm.chat` tracing span: one per request, carrying model, attempt and
//! token counts.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::sync::{Arc, Mutex};

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::{Layer, Registry};
use warden_fakes::openai::{FakeOpenAi, Reply};
use warden_llm::{ChatClient, ChatRequest, LlmConfig, Message, Price, Provider};

/// Fields of every `llm.chat` span, one map per span.
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<BTreeMap<String, String>>>>);

struct Fields<'a>(&'a mut BTreeMap<String, String>);

impl Visit for Fields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }
}

impl<S: tracing::Subscriber + for<'a> LookupSpan<'a>> Layer<S> for Capture {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        if attrs.metadata().name() != "llm.chat" {
            return;
        }
        let mut spans = self.0.lock().unwrap();
        let mut fields = BTreeMap::new();
        attrs.record(&mut Fields(&mut fields));
        spans.push(fields);
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(spans.len() - 1);
        }
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let Some(slot) = span.extensions().get::<usize>().copied() else {
            return;
        };
        values.record(&mut Fields(&mut self.0.lock().unwrap()[slot]));
    }
}

#[tokio::test]
async fn records_one_span_per_request_with_attempts_and_tokens() {
    let capture = Capture::default();
    let _guard = tracing::subscriber::set_default(Registry::default().with(capture.clone()));
    let fake = FakeOpenAi::start(vec![
        Reply::Status {
            code: 429,
            retry_after: Some("0".into()),
            body: r#"{"error":{"message":"slow down"}}"#.into(),
        },
        Reply::Text("one two three".into()),
    ]);
    let mut config = LlmConfig::new(
        Provider::Compatible {
            base_url: fake.base_url(),
            api_key: None,
        },
        "qwen2.5:7b",
    );
    config.price = Some(Price {
        prompt_usd_per_mtok: 1_000_000.0,
        completion_usd_per_mtok: 0.0,
    });
    let client = ChatClient::new(config).unwrap();

    client
        .complete(&ChatRequest {
            messages: vec![Message::User("hi".into())],
            ..ChatRequest::default()
        })
        .await
        .unwrap();

    let spans = capture.0.lock().unwrap().clone();
    assert_eq!(spans.len(), 1, "{spans:?}");
    let span = &spans[0];
    assert_eq!(span["model"], "qwen2.5:7b");
    assert_eq!(span["provider"], "compatible");
    assert_eq!(span["attempt"], "2");
    assert_eq!(span["prompt_tokens"], "10");
    assert_eq!(span["completion_tokens"], "3");
    assert_eq!(span["total_tokens"], "13");
    assert_eq!(span["cost_usd"], "10.0");
}
