//! `curflow-lambda`: the AWS Lambda function. Thin: logging, configuration, and the runtime loop;
//! event handling and the error policy are in `curflow::lambda` (see its docs).
//!
//! Build for Lambda (provided.al2023, arm64): `cargo lambda build --release --arm64 --bin curflow-lambda`
//! → `target/lambda/curflow-lambda/bootstrap`.

use std::sync::Arc;

use curflow::Config;
use curflow::lambda::{Handler, error_type};
use lambda_runtime::{Diagnostic, LambdaEvent, service_fn};
use serde_json::Value;

/// The CLI's allocator, returning freed memory after 10 ms (`curflow-alloc` says why): the function
/// scans the same Parquet files in 2,048 MB.
#[global_allocator]
static ALLOCATOR: curflow_alloc::MiMalloc = curflow_alloc::MiMalloc;

/// JSON logs on stdout (CloudWatch), one object per line, filter from `CURFLOW_LOG` (default `info`).
fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("CURFLOW_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let result = tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_current_span(false)
        .with_env_filter(filter)
        .try_init();
    if let Err(e) = result {
        eprintln!("logging already initialised: {e}");
    }
}

/// A returned error as the Lambda runtime reports it (the class decides retry vs bug).
fn diagnostic(e: curflow::Error) -> Diagnostic {
    Diagnostic { error_type: error_type(&e).to_string(), error_message: e.to_string() }
}

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    curflow_alloc::return_freed_memory_promptly();
    let _first = curflow::memory::set_release_hook(curflow_alloc::return_freed_memory_now);
    init_logging();
    let config = Config::load(None).inspect_err(|e| tracing::error!(error = %e, "configuration rejected"))?;
    let handler = Arc::new(Handler::new(config).await.inspect_err(|e| tracing::error!(error = %e, "startup failed"))?);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
        let handler = Arc::clone(&handler);
        async move {
            tracing::info!(request_id = %event.context.request_id, "event received");
            handler.handle(&event.payload, chrono::Utc::now()).await.map_err(diagnostic)
        }
    }))
    .await
}
