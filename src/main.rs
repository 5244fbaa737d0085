//! `udders`: the one binary. This file only wires: parse the command line,
//! set up logging, run the chosen command.

mod bench;
mod cli;
mod commands;
mod load;
mod up;

use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = cli::Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "udders=info,warn".into());
    let logs = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match cli.log_format {
        cli::LogFormat::Pretty => logs.init(),
        cli::LogFormat::Json => logs.json().with_current_span(true).with_span_list(false).init(),
    }
    match cli.command {
        cli::Command::Up(args) => up::run(args).await,
        cli::Command::Service(args) => commands::service(args).await,
        cli::Command::Healthcheck(args) => commands::healthcheck(args).await,
        cli::Command::Broker(args) => commands::broker(args).await,
        cli::Command::Catalog(args) => commands::catalog(args),
        cli::Command::Tap(args) => commands::tap(args).await,
        cli::Command::Load(args) => load::run(args).await,
        cli::Command::Replay(args) => commands::replay(args).await,
        cli::Command::Bench(cli::Bench::Store(args)) => bench::store::run(args).await,
        cli::Command::Bench(cli::Bench::Messaging(args)) => bench::messaging::run(args).await,
    }
}
