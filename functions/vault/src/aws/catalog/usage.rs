//! [`KeyUsageCatalog`] in DynamoDB: a key's shards, summed when read.
use super::item::{s, UsageShard, KEY_PK};
use super::{map_error, DynamoCatalog};
use crate::ports::catalog::{CatalogError, KeyUsage, KeyUsageCatalog};

/// Sums the shards of each key, keys in ARN order.
fn sum_shards(shards: Vec<UsageShard>) -> Vec<KeyUsage> {
    let mut keys: std::collections::BTreeMap<String, UsageShard> = Default::default();
    for shard in shards {
        match keys.get_mut(&shard.key_arn) {
            None => {
                keys.insert(shard.key_arn.clone(), shard);
            }
            Some(sum) => {
                sum.recordings += shard.recordings;
                sum.bytes += shard.bytes;
                sum.first_used = [sum.first_used.take(), shard.first_used].into_iter().flatten().min();
                sum.last_used = [sum.last_used.take(), shard.last_used].into_iter().flatten().max();
                sum.recording_types.extend(shard.recording_types);
            }
        }
    }
    keys.into_values()
        .map(|sum| {
            let mut types = sum.recording_types;
            types.sort();
            types.dedup();
            KeyUsage {
                key_arn: sum.key_arn,
                recordings: sum.recordings.max(0) as u64,
                bytes: sum.bytes.max(0) as u64,
                first_used: sum.first_used.unwrap_or_default(),
                last_used: sum.last_used.unwrap_or_default(),
                recording_types: types,
            }
        })
        .collect()
}

impl DynamoCatalog {
    /// Every usage item whose sort key starts with `prefix` (all of them
    /// when empty), consistently read.
    async fn usage_items(&self, prefix: &str) -> Result<Vec<UsageShard>, CatalogError> {
        let mut shards = Vec::new();
        let mut start = None;
        loop {
            let mut query = self
                .client
                .query()
                .table_name(&self.table)
                .consistent_read(true)
                .expression_attribute_values(":pk", s(KEY_PK))
                .set_exclusive_start_key(start);
            query = if prefix.is_empty() {
                query.key_condition_expression("pk = :pk")
            } else {
                query
                    .key_condition_expression("pk = :pk AND begins_with(sk, :arn)")
                    .expression_attribute_values(":arn", s(prefix))
            };
            let out = query.send().await.map_err(|e| map_error(e, &self.table))?;
            for item in out.items() {
                shards.push(UsageShard::from_item(item)?);
            }
            start = out.last_evaluated_key;
            if start.is_none() {
                return Ok(shards);
            }
        }
    }
}

impl KeyUsageCatalog for DynamoCatalog {
    async fn key_usage(&self, key_arn: &str) -> Result<Option<KeyUsage>, CatalogError> {
        // The key's own shards only: a longer ARN sharing the prefix is another key.
        let shards = self.usage_items(key_arn).await?.into_iter().filter(|u| u.key_arn == key_arn).collect();
        Ok(sum_shards(shards).pop())
    }

    async fn key_usages(&self) -> Result<Vec<KeyUsage>, CatalogError> {
        Ok(sum_shards(self.usage_items("").await?))
    }
}
