//! The proof that a copied message is the catalogued one.

use envelope::Limits;

/// The destination upload's check for a copied message: the bytes stored
/// begin with the catalogued message's header (its message id) and are as
/// many as the catalogued ciphertext.
pub(super) struct CopyCheck {
    message_id: Vec<u8>,
    size: u64,
    seen: u64,
    head: Vec<u8>,
}

impl CopyCheck {
    pub(super) fn new(message_id: Vec<u8>, size: u64) -> Self {
        Self { message_id, size, seen: 0, head: Vec::new() }
    }
}

impl crate::ports::objects::UploadCheck for CopyCheck {
    fn part(&mut self, bytes: &[u8]) -> Result<(), String> {
        let limit = Limits::default().max_header_len;
        if self.head.len() < limit {
            let take = bytes.len().min(limit - self.head.len());
            self.head.extend_from_slice(&bytes[..take]);
        }
        self.seen += bytes.len() as u64;
        Ok(())
    }

    fn finish(&mut self) -> Result<(), String> {
        let header = envelope::Header::parse(&self.head, &Limits::default())
            .map_err(|e| format!("the copy does not start with a message header: {e}"))?;
        if header.message_id.as_slice() != self.message_id.as_slice() {
            return Err("the copy is another message than the catalogued one".into());
        }
        if self.seen != self.size {
            return Err(format!("the copy holds {} bytes, the catalogued message {}", self.seen, self.size));
        }
        Ok(())
    }
}
