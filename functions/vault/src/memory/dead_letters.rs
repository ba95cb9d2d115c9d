//! The twin of the [`DeadLetters`] port: the letters, in order.

use std::sync::{Arc, Mutex};

use super::Faults;
use crate::ports::dead_letters::{DeadLetterError, DeadLetters};

/// An in-memory dead-letter queue.
#[derive(Clone, Default)]
pub struct MemoryDeadLetters {
    letters: Arc<Mutex<Vec<serde_json::Value>>>,
    /// Planned faults of `send`.
    pub faults: Arc<Faults<DeadLetterError>>,
}

impl MemoryDeadLetters {
    /// An empty queue.
    pub fn new() -> Self {
        Self::default()
    }

    /// Every letter sent so far.
    pub fn letters(&self) -> Vec<serde_json::Value> {
        self.letters.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

impl DeadLetters for MemoryDeadLetters {
    async fn send(&self, letter: &serde_json::Value) -> Result<(), DeadLetterError> {
        self.faults.before("send").await?;
        self.letters.lock().unwrap_or_else(|p| p.into_inner()).push(letter.clone());
        Ok(())
    }
}
