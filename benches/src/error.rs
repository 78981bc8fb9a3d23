//! The one error type of the harness: which step failed and why.

use std::io;
use std::time::Duration;

use jetmon_engine::EngineError;

/// Why a benchmark step could not run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BenchError {
    /// A file, socket or process operation failed.
    #[error("{what}: {source}")]
    Io {
        /// What the harness was doing.
        what: String,
        /// The underlying error.
        source: io::Error,
    },
    /// The engine refused to start.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// The test certificates could not be generated.
    #[error("generate test certificates: {0}")]
    Certificate(#[from] rcgen::Error),
    /// An external tool exited with an error.
    #[error("{tool} failed ({status}): {stderr}")]
    ToolFailed {
        /// The program.
        tool: &'static str,
        /// Its exit status.
        status: String,
        /// The tail of what it wrote to stderr.
        stderr: String,
    },
    /// A tool's or child's output lacked what the harness reads from it.
    #[error("{tool} output has no {field}: {output}")]
    Parse {
        /// The program.
        tool: &'static str,
        /// The missing piece.
        field: &'static str,
        /// What it printed.
        output: String,
    },
    /// A step did not finish within its bound.
    #[error("{what} did not finish within {limit:?}")]
    Timeout {
        /// The step.
        what: String,
        /// The bound.
        limit: Duration,
    },
}

impl BenchError {
    /// A closure for `map_err` that wraps an IO error with what was being done.
    pub(crate) fn io(what: impl Into<String>) -> impl FnOnce(io::Error) -> BenchError {
        let what = what.into();
        move |source| BenchError::Io { what, source }
    }
}
