//! # envelope: the AWS Encryption SDK message format, version 2
//!
//! Pure and synchronous: no AWS SDK, no async runtime. Writes suite 0x0478
//! (AES_256_GCM_HKDF_SHA512_COMMIT_KEY: committing, unsigned), framed; reads
//! the same, and refuses everything else with an error that names it.
//!
//! - [`EncryptingWriter`]: a `Write` adapter that must be [finished](EncryptingWriter::finish).
//! - [`PendingMessage`] then [`DecryptingReader`]: read the header, unwrap the
//!   data key, then read plaintext; a frame is released only once it has
//!   authenticated.
//! - [`BodyLayout`], [`FrameSpan`] and [`RangeReader`]: decrypt a byte range
//!   from just the frames that cover it; [`FrameOpener::open_in_place`]
//!   decrypts frames already in memory without copying them.
//! - [`CiphertextCheck`]: re-reads a message from the bytes written (header
//!   authenticated, every frame opened, plaintext digested), to prove it
//!   decrypts before its plaintext is deleted.
//!
//! Key wrapping (KMS and the like) is not here: callers turn
//! [`EncryptedDataKey`]s into a [`DataKey`] and back.
//!
//! A header is sealed once, by [`MessageEncryptor::new`], with a fresh
//! random message id: there is no API that re-seals a header under an
//! existing data key. Its tag is AES-GCM under a key derived from the data
//! key and the message id, with a fixed all-zero IV, so a second header under
//! the same data key and message id would reuse the nonce and give away the
//! GHASH key. A re-keyed recording is a new message.

mod check;
mod context;
mod decrypt;
mod encrypt;
mod error;
mod frame;
mod header;
mod key;
mod layout;
pub mod suite;

pub use check::{CheckedMessage, CiphertextCheck};
pub use context::{EncryptionContext, RESERVED_PREFIX};
pub use decrypt::{DecryptingReader, PendingMessage, RangeReader};
pub use encrypt::{EncryptingWriter, MessageEncryptor, MessageSpec, DEFAULT_FRAME_LENGTH};
pub use error::{DecryptError, EncryptError, HeaderError};
pub use frame::{FrameOpener, FramesInPlace, FINAL_FRAME_OVERHEAD, FINAL_FRAME_PREFIX_LEN, REGULAR_FRAME_OVERHEAD};
pub use header::{EncryptedDataKey, Header, Limits, CONTENT_TYPE_FRAMED, MESSAGE_ID_LEN, TAG_LEN, VERSION};
pub use key::{DataKey, KEY_LEN};
pub use layout::{BodyLayout, FrameSpan, SpanBatches};
