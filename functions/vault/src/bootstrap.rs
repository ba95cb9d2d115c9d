//! How every callvault binary starts: the allocator that wipes freed memory
//! ([`crate::wipe`]), and for a Lambda the tracing subscriber, the Tokio
//! runtime and the AWS SDK's configuration, so that each `main.rs` states
//! only what is its own (its clients and its handler).
//!
//! The allocator is a macro, not a `#[global_allocator]` in this library:
//! one declared here would also be the allocator of every test binary that
//! links `vault` and clash with the one `tests/wiped_on_free.rs` declares.
//! The macros expand inside each `main.rs`; the layout test checks that every
//! binary calls one of them.

/// Installs [`crate::wipe::WipeOnFree`] as the binary's global allocator:
/// every freed heap block, ours and the AWS SDK's, is zeroed.
#[macro_export]
macro_rules! wipe_freed_memory {
    () => {
        // Freed memory keeps no copy of a data key, ours or the SDK's (vault::wipe).
        #[global_allocator]
        static ALLOCATOR: $crate::wipe::WipeOnFree = $crate::wipe::WIPE_ON_FREE;
    };
}

/// A Lambda's `main`: the allocator that wipes freed memory, then
/// [`start`], which runs `serve` with the AWS SDK's configuration. `serve` is
/// an `async fn(aws_config::SdkConfig) -> Result<(), vault::bootstrap::Error>`
/// that builds the function's clients and handler and runs the Lambda
/// runtime's loop.
#[cfg(all(feature = "lambda", feature = "aws"))]
#[macro_export]
macro_rules! lambda_main {
    ($serve:path) => {
        $crate::wipe_freed_memory!();

        fn main() -> ::std::result::Result<(), $crate::bootstrap::Error> {
            $crate::bootstrap::start($serve)
        }
    };
}

/// What a Lambda's `main` may fail with (the Lambda runtime's error).
#[cfg(feature = "lambda")]
pub type Error = lambda_runtime::Error;

/// Starts a Lambda: the tracing subscriber the runtime configures
/// (`AWS_LAMBDA_LOG_FORMAT`, `AWS_LAMBDA_LOG_LEVEL`), a multi-threaded Tokio
/// runtime, the AWS SDK's configuration from the environment, then `serve`.
#[cfg(all(feature = "lambda", feature = "aws"))]
pub fn start<F, Fut>(serve: F) -> Result<(), Error>
where
    F: FnOnce(aws_config::SdkConfig) -> Fut,
    Fut: std::future::Future<Output = Result<(), Error>>,
{
    tokio::runtime::Builder::new_multi_thread().enable_all().build()?.block_on(async {
        lambda_runtime::tracing::init_default_subscriber();
        let sdk = aws_config::load_from_env().await;
        serve(sdk).await
    })
}
