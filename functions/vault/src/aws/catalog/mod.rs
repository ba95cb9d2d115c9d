//! The catalog in DynamoDB: the adapter of every catalog port
//! (`crate::ports::catalog`), one table. One file per port, as the port and
//! the twin are split; the item codec and the table's layout are in [`item`].
//! Every transaction goes through [`DynamoCatalog::transact`], which says
//! which item's condition failed.

mod browse;
mod claims;
mod denials;
mod item;
mod listing;
mod recordings;
mod retention;
mod usage;

use std::collections::HashMap;

use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{AttributeValue, TransactWriteItem};

use crate::ports::catalog::CatalogError;

use item::{s, Item};
pub use item::{BY_DATE_INDEX, RETENTION_INDEX};

/// The DynamoDB API calls this module makes, as IAM actions. IAM has no
/// TransactWriteItems action: a transaction is authorised by its items'
/// actions (Put, Update and Delete here).
pub const AWS_CALLS: &[&str] = &[
    "dynamodb:GetItem",
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
    "dynamodb:DeleteItem",
    "dynamodb:Query",
    "dynamodb:Scan",
    "dynamodb:ConditionCheckItem",
];

pub(super) fn map_error<E, R>(err: SdkError<E, R>, table: &str) -> CatalogError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug,
{
    let table = table.to_string();
    match &err {
        SdkError::ServiceError(se) => {
            let e = se.err();
            let detail = format!("{}: {}", e.code().unwrap_or("unknown"), e.message().unwrap_or(""));
            match e.code().unwrap_or_default() {
                "ResourceNotFoundException" => CatalogError::TableMissing { table },
                "AccessDeniedException" | "UnrecognizedClientException" => CatalogError::AccessDenied { table, detail },
                "ProvisionedThroughputExceededException"
                | "ThrottlingException"
                | "RequestLimitExceeded"
                | "InternalServerError"
                | "ServiceUnavailable"
                | "TransactionInProgressException" => CatalogError::Unavailable { detail },
                // A single-item call on an item a transaction is writing.
                "TransactionConflictException" => CatalogError::Conflict { detail },
                _ => CatalogError::Refused { detail },
            }
        }
        _ => CatalogError::Unavailable { detail: format!("{err}") },
    }
}

/// The catalog in DynamoDB.
#[derive(Clone)]
pub struct DynamoCatalog {
    client: aws_sdk_dynamodb::Client,
    table: String,
}

impl DynamoCatalog {
    /// The catalog in `table`.
    pub fn new(client: aws_sdk_dynamodb::Client, table: impl Into<String>) -> Self {
        Self { client, table: table.into() }
    }

    /// A client from `config`.
    pub fn from_config(config: &aws_config::SdkConfig, table: impl Into<String>) -> Self {
        Self::new(aws_sdk_dynamodb::Client::new(config), table)
    }

    /// The table name.
    pub fn table(&self) -> &str {
        &self.table
    }

    pub(super) fn key(pk: AttributeValue, sk: &str) -> Item {
        HashMap::from([("pk".to_string(), pk), ("sk".to_string(), s(sk))])
    }
}

/// How a transaction whose items DynamoDB checked ended.
pub(super) enum Transacted {
    Committed,
    /// Cancelled: the condition of this item (its index in the transaction,
    /// the first whose condition failed) did not hold.
    ConditionFailed(usize),
}

impl DynamoCatalog {
    /// Sends a transaction. Cancelled because a condition failed: which
    /// item's; cancelled for any other reason (a conflict with another
    /// transaction, throttling, a refusal), or failed otherwise: the error.
    pub(super) async fn transact(&self, items: Vec<TransactWriteItem>) -> Result<Transacted, CatalogError> {
        let err = match self.client.transact_write_items().set_transact_items(Some(items)).send().await {
            Ok(_) => return Ok(Transacted::Committed),
            Err(e) => e,
        };
        let Some(reasons) = cancellation_reasons(&err) else {
            return Err(map_error(err, &self.table));
        };
        match reasons.iter().position(|r| r == "ConditionalCheckFailed") {
            Some(item) => Ok(Transacted::ConditionFailed(item)),
            None => Err(cancelled(&reasons.iter().map(String::as_str).collect::<Vec<_>>())),
        }
    }
}

/// A builder's refusal (a required field unset) as the catalog's.
pub(super) fn build_error(e: aws_sdk_dynamodb::error::BuildError) -> CatalogError {
    CatalogError::Refused { detail: e.to_string() }
}

/// Why DynamoDB cancelled a transaction, item by item (`None`: the call
/// failed otherwise).
fn cancellation_reasons<R>(
    err: &SdkError<aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError, R>,
) -> Option<Vec<String>> {
    match err {
        SdkError::ServiceError(se) => match se.err() {
            TransactWriteItemsError::TransactionCanceledException(c) => {
                Some(c.cancellation_reasons().iter().map(|r| r.code().unwrap_or("None").to_string()).collect())
            }
            _ => None,
        },
        _ => None,
    }
}

/// A cancelled transaction whose conditions held: a conflict, throttling,
/// or a refusal.
fn cancelled(reasons: &[&str]) -> CatalogError {
    let detail = format!("transaction cancelled: {reasons:?}");
    if reasons.contains(&"TransactionConflict") {
        CatalogError::Conflict { detail }
    } else if reasons.iter().any(|r| r.contains("Throughput") || *r == "ThrottlingError") {
        CatalogError::Unavailable { detail }
    } else {
        CatalogError::Refused { detail }
    }
}
