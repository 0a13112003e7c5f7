//! The served OpenAPI document is the committed `docs/openapi.json`, so a
//! change to the API shows up in review as a change to that file; and
//! `docs/api.md` mentions every operation of it.
//!
//! After an intended change: `UPDATE_SNAPSHOTS=1 cargo test --test api
//! openapi` rewrites the snapshot; review its diff like code.

use std::path::PathBuf;

use serde_json::Value;

use crate::helpers::TestApp;

fn docs(file: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("docs")
        .join(file)
}

async fn served(app: &TestApp) -> Value {
    let reply = app
        .request(reqwest::Method::GET, "/openapi.json", None, &[], None)
        .await;
    assert_eq!(reply.status, 200, "{reply:?}");
    reply.body
}

/// A JSON Pointer segment (RFC 6901), so `/v1/customers` reads as a path.
fn segment(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

fn short(value: &Value) -> String {
    let text = value.to_string();
    match text.char_indices().nth(120) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text,
    }
}

/// Where `served` differs from `snapshot`, one line per difference, as JSON
/// Pointers: what was added, removed or changed.
fn differences(pointer: &str, snapshot: &Value, served: &Value, out: &mut Vec<String>) {
    match (snapshot, served) {
        (Value::Object(old), Value::Object(new)) => {
            for (key, value) in old {
                let here = format!("{pointer}/{}", segment(key));
                match new.get(key) {
                    Some(now) => differences(&here, value, now, out),
                    None => out.push(format!("- removed {here}: {}", short(value))),
                }
            }
            for (key, value) in new {
                if !old.contains_key(key) {
                    let here = format!("{pointer}/{}", segment(key));
                    out.push(format!("+ added   {here}: {}", short(value)));
                }
            }
        }
        (Value::Array(old), Value::Array(new)) if old.len() == new.len() => {
            for (index, (before, now)) in old.iter().zip(new).enumerate() {
                differences(&format!("{pointer}/{index}"), before, now, out);
            }
        }
        _ if snapshot != served => out.push(format!(
            "~ changed {pointer}: {} → {}",
            short(snapshot),
            short(served)
        )),
        _ => {}
    }
}

#[tokio::test]
async fn the_served_document_is_the_committed_snapshot() {
    let app = TestApp::spawn().await;
    let document = served(&app).await;
    let path = docs("openapi.json");
    if std::env::var("UPDATE_SNAPSHOTS").as_deref() == Ok("1") {
        let text = serde_json::to_string_pretty(&document).expect("JSON") + "\n";
        std::fs::write(&path, text).expect("docs/openapi.json is writable");
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    let snapshot: Value = serde_json::from_str(&committed).unwrap_or(Value::Null);
    let mut found = Vec::new();
    differences("", &snapshot, &document, &mut found);
    let shown = found.len().min(40);
    assert!(
        found.is_empty(),
        "the served /openapi.json differs from docs/openapi.json in {} places{}:\n{}\n\n\
         If the change is intended, run `UPDATE_SNAPSHOTS=1 cargo test --test api openapi` \
         and review the diff of docs/openapi.json (and docs/api.md).",
        found.len(),
        if shown < found.len() {
            format!(" (the first {shown})")
        } else {
            String::new()
        },
        found[..shown].join("\n")
    );
}

#[tokio::test]
async fn the_api_reference_mentions_every_operation() {
    let app = TestApp::spawn().await;
    let document = served(&app).await;
    let reference = std::fs::read_to_string(docs("api.md")).expect("docs/api.md is there to read");
    let paths = document["paths"].as_object().expect("paths");
    let mut missing = Vec::new();
    for (path, item) in paths {
        for method in item.as_object().expect("path item").keys() {
            let operation = format!("{} {path}", method.to_uppercase());
            if !reference.contains(&operation) {
                missing.push(operation);
            }
        }
    }
    assert!(
        missing.is_empty(),
        "docs/api.md does not describe: {}",
        missing.join(", ")
    );
}

#[test]
fn differences_read_as_pointers() {
    let old = serde_json::json!({ "paths": { "/v1/a": { "get": 1 } }, "x": [1, 2] });
    let new = serde_json::json!({ "paths": { "/v1/a": { "get": 2 }, "/v1/b": {} }, "x": [1] });
    let mut found = Vec::new();
    differences("", &old, &new, &mut found);
    assert_eq!(
        found,
        [
            "~ changed /paths/~1v1~1a/get: 1 → 2",
            "+ added   /paths/~1v1~1b: {}",
            "~ changed /x: [1,2] → [1]",
        ]
    );
}
