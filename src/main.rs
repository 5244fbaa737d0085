//! `udders`: the one binary. This file only wires: parse the command line,
//! set up logging, run the chosen command.

mod admin;
mod bench;
mod cli;
mod commands;
mod dead_letters;
mod load;
mod up;

use clap::Parser;

/// jemalloc instead of glibc's malloc: under load glibc's malloc took about a
/// fifth of the CPU (its arenas and chunk consolidation, with a thread per
/// SQLite connection and several per Kafka client), and the same run kept
/// up with 400 orders/s on jemalloc against 300 on glibc, in the same RSS
/// (docs/benchmarks.md). mimalloc was faster still but held three times the
/// memory.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc's settings, read at its start (docs/benchmarks.md, the
/// eleventh and twelfth measurements):
/// - `dirty_decay_ms:1000`: pages freed and left unused for a second go back
///   to the system (its default waits ten seconds). Under overload the heap
///   churns through more pages than it keeps, and the ten seconds' worth
///   held about 15 MB of RSS at 600 orders/s offered.
/// - `tcache_max:1024,lg_tcache_nslots_mul:-2`: each thread's cache keeps
///   blocks of at most 1 KiB (not 32 KiB), a quarter as many of each size.
///   The process has some 190 threads (tokio's, sqlx's one per SQLite
///   connection); their caches held about 22 MB of the peak at five times
///   capacity (peak 0.88 of the default caches'). At 200 orders/s, three
///   runs each of 60 s: p99 1.00 and peak 0.85 of the default caches'.
///
/// Neither cost throughput measured. The `_RJEM_MALLOC_CONF` environment
/// variable, read after this, overrides them. Its type is the one
/// tikv-jemalloc-sys declares for `malloc_conf`.
#[allow(unsafe_code)]
#[unsafe(export_name = "_rjem_malloc_conf")]
// SAFETY: the pointer is a string literal's, so it is valid and
// NUL-terminated for the whole run.
static JEMALLOC_SETTINGS: Option<&std::ffi::c_char> =
    Some(unsafe { &*c"dirty_decay_ms:1000,tcache_max:1024,lg_tcache_nslots_mul:-2".as_ptr() });

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    let cli = cli::Cli::parse();
    // Traces leave the process only from the commands that run services,
    // and only when OTEL_EXPORTER_OTLP_ENDPOINT is set.
    let traced = match &cli.command {
        cli::Command::Up(args) => args.traces.otlp_endpoint.as_deref().map(|e| (e, "udders")),
        cli::Command::Service(args) => args.traces.otlp_endpoint.as_deref().map(|e| (e, args.service.as_str())),
        _ => None,
    };
    let telemetry = match traced.filter(|(endpoint, _)| !endpoint.trim().is_empty()) {
        Some((endpoint, name)) => {
            Some(udders_runtime::telemetry::Telemetry::to_otlp(endpoint, name).map_err(anyhow::Error::msg)?)
        }
        None => None,
    };
    // A benchmark's output is its figures: the systems it runs in-process
    // log warnings only, unless RUST_LOG says otherwise.
    let default_filter = if matches!(cli.command, cli::Command::Bench(_)) { "warn" } else { "udders=info,warn" };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| default_filter.into());
    let registry = tracing_subscriber::registry().with(filter).with(telemetry.as_ref().map(|t| t.layer()));
    let logs = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    match cli.log_format {
        cli::LogFormat::Pretty => registry.with(logs).init(),
        cli::LogFormat::Json => registry.with(logs.json().with_current_span(true).with_span_list(false)).init(),
    }
    if let Some((endpoint, _)) = traced.filter(|_| telemetry.is_some()) {
        tracing::info!(%endpoint, "exporting traces over OTLP/HTTP");
    }
    // `malloc_trim` works on the whole process's heap: one task per process
    // that runs services, not one per `System` or `Node` (tests and benches
    // start several in one process).
    let releasing = matches!(cli.command, cli::Command::Up(_) | cli::Command::Service(_)).then(|| {
        let stop = tokio_util::sync::CancellationToken::new();
        (tokio::spawn(udders::heap::release_freed_memory(udders::heap::RELEASE_EVERY, stop.clone())), stop)
    });
    let outcome = run(cli.command).await;
    if let Some((task, stop)) = releasing {
        stop.cancel();
        let _ = task.await;
    }
    if let Some(telemetry) = telemetry {
        telemetry.shutdown();
    }
    outcome
}

async fn run(command: cli::Command) -> anyhow::Result<()> {
    match command {
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
        cli::Command::Bench(cli::Bench::Board(args)) => bench::board::run(args).await,
        cli::Command::Bench(cli::Bench::Floor(args)) => bench::floor::run(args).await,
        cli::Command::DeadLetters(command) => dead_letters::run(command).await,
        cli::Command::Admin(command) => admin::run(command).await,
    }
}

#[cfg(test)]
mod tests {
    /// One of jemalloc's options, as `mallctl` reads it (`T` is the option's
    /// C type: `ssize_t` is `isize`, `size_t` is `usize`).
    #[allow(unsafe_code)]
    fn jemalloc_option<T: Default>(name: &std::ffi::CStr) -> T {
        let mut value = T::default();
        let mut len = std::mem::size_of::<T>();
        // SAFETY: `value` and `len` are valid for writes of `T`'s size,
        // which the caller gives as the option's type; nothing is written.
        let rc = unsafe {
            tikv_jemalloc_sys::mallctl(name.as_ptr(), (&raw mut value).cast(), &raw mut len, std::ptr::null_mut(), 0)
        };
        assert_eq!(rc, 0, "mallctl({name:?}) failed");
        assert_eq!(len, std::mem::size_of::<T>(), "{name:?} is not of the size given");
        value
    }

    /// The compiled-in settings reach jemalloc: this test binary has the
    /// same allocator and settings as `udders`. (`_RJEM_MALLOC_CONF` in the
    /// environment overrides them and fails this test; CI does not set it.)
    #[test]
    fn jemalloc_runs_with_the_compiled_in_settings() {
        let why = "not the compiled-in setting (does _RJEM_MALLOC_CONF override it?)";
        assert_eq!(jemalloc_option::<isize>(c"opt.dirty_decay_ms"), 1000, "{why}");
        assert_eq!(jemalloc_option::<usize>(c"opt.tcache_max"), 1024, "{why}");
        assert_eq!(jemalloc_option::<isize>(c"opt.lg_tcache_nslots_mul"), -2, "{why}");
    }
}
