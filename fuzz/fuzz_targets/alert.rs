//! The alert webhook parser: any JSON body gives a task or an error, never a
//! panic; a task always names its source and carries the body.
#![no_main]
#![allow(
    clippy::disallowed_methods,
    reason = "fuzz_target! saves inputs with std::fs::File::create"
)]

use libfuzzer_sys::fuzz_target;
use warden_agent::Task;

fuzz_target!(|data: &[u8]| {
    warden_fuzz::bounded();
    let Ok(body) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    if let Ok(task) = Task::from_webhook("t-fuzz", &body) {
        assert!(
            task.source == "alertmanager" || task.source == "azure-monitor",
            "unexpected source {}",
            task.source
        );
        assert!(task.alert.is_some(), "a webhook task without its alert");
        assert_eq!(task.attachments.get("webhook"), Some(&body));
    }
});
