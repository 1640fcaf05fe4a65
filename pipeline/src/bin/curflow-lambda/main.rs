//! `curflow-lambda`: the AWS Lambda function. Thin: logging, configuration, and the runtime loop;
//! event handling and the error policy are in `curflow::lambda` (see its docs).
//!
//! Build for Lambda (provided.al2023, arm64): `cargo lambda build --release --arm64 --bin curflow-lambda`
//! → `target/lambda/curflow-lambda/bootstrap`.

use std::sync::Arc;

use curflow::Config;
use curflow::lambda::{Handler, init_logging};
use lambda_runtime::{LambdaEvent, service_fn};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    init_logging();
    let config = Config::load(None).inspect_err(|e| tracing::error!(error = %e, "configuration rejected"))?;
    let handler = Arc::new(Handler::new(config).await.inspect_err(|e| tracing::error!(error = %e, "startup failed"))?);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
        let handler = Arc::clone(&handler);
        async move {
            tracing::info!(request_id = %event.context.request_id, "event received");
            handler.handle(&event.payload, chrono::Utc::now()).await
        }
    }))
    .await
}
