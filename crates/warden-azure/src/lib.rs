//! Azure Resource Manager capability for warden hosts.
#![deny(missing_docs)]
