//! The twin of the [`Alerts`] port: what was published, in order.

use std::sync::{Arc, Mutex};

use super::Faults;
use crate::ports::alerts::{AlertError, Alerts};

/// One published message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Published {
    pub subject: String,
    pub body: String,
    pub attributes: Vec<(String, String)>,
}

impl Published {
    /// The value of a message attribute.
    pub fn attribute(&self, name: &str) -> Option<&str> {
        self.attributes.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

/// An in-memory alert topic.
#[derive(Clone, Default)]
pub struct MemoryAlerts {
    published: Arc<Mutex<Vec<Published>>>,
    /// Planned faults of `publish`.
    pub faults: Arc<Faults<AlertError>>,
}

impl MemoryAlerts {
    /// A topic with nothing published.
    pub fn new() -> Self {
        Self::default()
    }

    /// Everything published so far.
    pub fn published(&self) -> Vec<Published> {
        self.published.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

impl Alerts for MemoryAlerts {
    async fn publish_message(
        &self,
        subject: &str,
        body: &str,
        attributes: &[(&str, &str)],
    ) -> Result<String, AlertError> {
        self.faults.before("publish").await?;
        let id = {
            let mut published = self.published.lock().unwrap_or_else(|p| p.into_inner());
            published.push(Published {
                subject: subject.to_string(),
                body: body.to_string(),
                attributes: attributes.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            });
            format!("message-{}", published.len())
        };
        self.faults.after("publish").await?;
        Ok(id)
    }
}
