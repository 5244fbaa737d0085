//! `udders dead-letters list|replay|discard`: the console's dead-letter
//! actions from a shell, through a running process's HTTP API.

use std::io::Write;

use anyhow::Context;
use serde_json::Value;

use crate::cli::{DeadLettersCommand, OperatorTarget};

pub async fn run(command: DeadLettersCommand) -> anyhow::Result<()> {
    let client = reqwest::Client::new();
    let mut out = std::io::stdout().lock();
    match command {
        DeadLettersCommand::List(args) => {
            let mut query = Vec::new();
            for (name, value) in [("service", &args.service), ("status", &args.status)] {
                if let Some(value) = value {
                    query.push((name, value.as_str()));
                }
            }
            let url = format!("{}/dead-letters", base(&args.target));
            let letters =
                answer(client.get(&url).query(&query).send().await.with_context(|| format!("GET {url}"))?).await?;
            if args.json {
                writeln!(out, "{}", serde_json::to_string_pretty(&letters)?)?;
                return Ok(());
            }
            let rows = letters.as_array().cloned().unwrap_or_default();
            writeln!(out, "{:<16} {:<10} {:<9} {:<38} reason", "id", "status", "attempts", "order")?;
            for l in &rows {
                writeln!(
                    out,
                    "{:<16} {:<10} {:<9} {:<38} {}",
                    text(&l["id"]),
                    text(&l["status"]),
                    l["attempts"],
                    text(&l["order_id"]),
                    text(&l["reason"])
                )?;
            }
            writeln!(out, "{} dead letters", rows.len())?;
        }
        DeadLettersCommand::Replay(args) => {
            let request = match &args.id {
                Some(id) => client.post(format!("{}/dead-letters/{id}/replay", base(&args.target))),
                None => {
                    let mut query = Vec::new();
                    for (name, value) in [("service", &args.service), ("reason", &args.reason)] {
                        if let Some(value) = value {
                            query.push((name, value.clone()));
                        }
                    }
                    client.post(format!("{}/dead-letters/replay", base(&args.target))).query(&query)
                }
            };
            let answer = answer(authorised(request, &args.target).send().await.context("POST replay")?).await?;
            writeln!(out, "{}", serde_json::to_string_pretty(&answer)?)?;
        }
        DeadLettersCommand::Discard(args) => {
            let url = format!("{}/dead-letters/{}/discard", base(&args.target), args.id);
            let request = client.post(&url).json(&serde_json::json!({ "note": args.note }));
            let answer =
                answer(authorised(request, &args.target).send().await.with_context(|| format!("POST {url}"))?).await?;
            writeln!(out, "{}", serde_json::to_string_pretty(&answer)?)?;
        }
    }
    Ok(())
}

pub(crate) fn base(target: &OperatorTarget) -> &str {
    target.url.trim_end_matches('/')
}

pub(crate) fn authorised(request: reqwest::RequestBuilder, target: &OperatorTarget) -> reqwest::RequestBuilder {
    match &target.token {
        Some(token) => request.bearer_auth(token),
        None => request,
    }
}

fn text(value: &Value) -> &str {
    value.as_str().unwrap_or("-")
}

/// The JSON body of a success; a problem's detail as the error otherwise.
pub(crate) async fn answer(response: reqwest::Response) -> anyhow::Result<Value> {
    let status = response.status();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    anyhow::ensure!(status.is_success(), "{status}: {}", body["detail"].as_str().unwrap_or("no details"));
    Ok(body)
}
