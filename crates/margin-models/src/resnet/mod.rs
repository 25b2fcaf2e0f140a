//! torchvision's ResNet-18/34/50 as Burn modules, loaded from torchvision `state_dict` files.
//!
//! - [`ResNet`] (`net.rs`): the backbone up to the global average pool, with torchvision's
//!   layout and field names; [`ResNetConfig`] builds it. Blocks in `block.rs`; every
//!   conv → BatchNorm (→ ReLU) goes through `ops::conv_bn`, the one place for a faster path.
//! - `load.rs`: `.pth` (read by burn-store's PyTorch reader, no Python) and `.safetensors` by
//!   torchvision's key names, with errors naming missing / unexpected / mis-shaped keys and a
//!   file of another architecture (`keys.rs`: the key walk and the architecture detection).
//! - [`NhwcResNet`] (`nhwc.rs`): the eval-mode forward on the CPU in channels-last layout,
//!   BatchNorm folded once, one GEMM pass per convolution, 3×3 stride-1 ones by Winograd
//!   F(2×2, 3×3) (`winograd.rs`); `ResNet::forward_features` takes it on `flex` when no
//!   gradient is wanted.
//! - Training on `flex` (`train_net.rs`): the same channels-last layout with backward passes
//!   of its own — convolutions (`train_conv.rs`: Winograd for the forward and `∂x` of 3×3
//!   stride-1 layers, GEMM for `∂W`), BatchNorm fused with ReLU / residual add
//!   (`train_norm.rs`), the stem's max-pool — as Burn operations (`train_ops.rs`).
//! - [`ResnetEncoder`] (`head.rs`): backbone + embedding head, freezing.
//!
//! BatchNorm follows burn-nn: running statistics on a device without autodiff (inference,
//! `margin embed`) and in frozen layers; batch statistics in training. Pinned by golden
//! outputs of torchvision (`tests/resnet_golden.rs`, `../shared/golden/resnet18`).

mod block;
mod error;
mod head;
mod keys;
mod load;
mod net;
mod nhwc;
mod ops;
mod train_conv;
mod train_net;
mod train_norm;
mod train_ops;
mod winograd;

pub use block::{Block, Downsample, Stage};
pub use error::ResnetError;
pub use head::{EmbeddingHead, ResnetEncoder};
pub use keys::detect;
pub use load::{HostTensor, read_tensors};
pub use net::{ResNet, ResNetConfig};
pub use nhwc::NhwcResNet;
