//! `udders admin price|restock|credit-limit`: reference data changes from a
//! shell, through the owning service's HTTP API (operator token).

use std::io::Write;

use anyhow::Context;
use serde_json::json;

use crate::cli::AdminCommand;
use crate::dead_letters::{answer, authorised, base};

pub async fn run(command: AdminCommand) -> anyhow::Result<()> {
    let client = reqwest::Client::new();
    let (target, request) = match &command {
        AdminCommand::Price { target, flavor, country, unit_price } => {
            let url = format!("{}/admin/prices/{flavor}/{country}", base(target));
            (target, client.put(url).json(&json!({ "unit_price": unit_price })))
        }
        AdminCommand::Restock { target, flavor, country, add } => {
            let url = format!("{}/admin/stock/{flavor}/{country}", base(target));
            (target, client.post(url).json(&json!({ "add": add })))
        }
        AdminCommand::CreditLimit { target, customer, limit } => {
            let url = format!("{}/admin/customers/{customer}/credit-limit", base(target));
            (target, client.put(url).json(&json!({ "limit": limit })))
        }
    };
    let answer = answer(authorised(request, target).send().await.context("sending the change")?).await?;
    writeln!(std::io::stdout().lock(), "{}", serde_json::to_string_pretty(&answer)?)?;
    Ok(())
}
