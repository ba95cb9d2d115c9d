//! Data keys leave no copies behind in freed memory.
//!
//! Our own copies of a data key are wiped when dropped (`DataKey`,
//! `Zeroizing` buffers). Some copies are not ours to drop: handing a data
//! key to KMS (`Encrypt` of a disaster-recovery wrap) moves a `Vec` into
//! the SDK's request, which the SDK then serialises to JSON and base64 and
//! frees; a `GenerateDataKey` or `Decrypt` answer is parsed from JSON the
//! SDK owns. Every callvault binary therefore installs [`WipeOnFree`] as its
//! global allocator (1Password's `zeroizing-alloc`): every heap block,
//! ours and the SDK's, is zeroed when it is freed.
//!
//! What this cannot reach: copies that are still alive (the TLS library's
//! reused record buffers, an SDK buffer that lives as long as its client),
//! the stack, the kernel's socket buffers and swap. docs/security.md
//! says so.
//!
//! Every `main.rs` installs it with `vault::lambda_main!` (a Lambda) or
//! `vault::wipe_freed_memory!()` (the CLI): see [`crate::bootstrap`].

pub use zeroizing_alloc::ZeroAlloc;

/// The system allocator, zeroing every block it frees.
pub type WipeOnFree = ZeroAlloc<std::alloc::System>;

/// The value every binary installs.
pub const WIPE_ON_FREE: WipeOnFree = ZeroAlloc(std::alloc::System);
