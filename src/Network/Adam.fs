namespace Hybrid.Classifier

open Hybrid.Dsp

/// Settings of Adam and AdamW.
type AdamSettings =
    { LearningRate: float
      Beta1: float
      Beta2: float
      Epsilon: float
      /// Adam: L2 penalty added to the gradient; AdamW: decoupled decay p *= 1 - lr * WeightDecay.
      WeightDecay: float }

/// The update rule of Adam (Kingma and Ba 2015, bias-corrected) and AdamW (Loshchilov and Hutter 2019), which differ
/// only in the weight decay: m = Beta1 m + (1 - Beta1) g; v = Beta2 v + (1 - Beta2) g^2;
/// p -= lr m^ / (sqrt(v^) + Epsilon) with m^ = m / (1 - Beta1^t), v^ = v / (1 - Beta2^t); Adam adds WeightDecay p to
/// g, AdamW (`decoupled`) first scales p by 1 - lr WeightDecay. Two slots per parameter: the moments m and v.
module internal AdamRule =
    /// Slots of state per parameter: the first and second moments.
    let slotCount = 2

    /// One step of `value` (any shape) with its gradient `grad` and its slots [| m; v |] (the same shape) at learning
    /// rate `lr` (the schedule already applied) and 1-based step `step` (t), on the engine's `ops`.
    let update (ops: INnOps) (settings: AdamSettings) (decoupled: bool) (lr: float32) (step: int)
               (value: Tensor) (grad: Tensor) (slots: Tensor[]) =
        ops.AdamUpdate(value, grad, slots[0], slots[1], lr, float32 settings.Beta1, float32 settings.Beta2,
                       float32 settings.Epsilon, float32 settings.WeightDecay, decoupled, step)

    /// `update` over a device engine's flat parameters `values` and gradients `grads` (see `Model.Flat`) with the flat
    /// slots, in one launch: skipped on the device while `status` records a non-finite loss, the gradient first
    /// multiplied by `status`'s clipping scale when `clipped` (`INnDeviceTraining.AdamUpdateGuarded`).
    let updateFlat (device: INnDeviceTraining) (settings: AdamSettings) (decoupled: bool) (lr: float32) (step: int)
                   (values: Tensor) (grads: Tensor) (slots: Tensor[]) (status: Tensor) (clipped: bool) =
        device.AdamUpdateGuarded(values, grads, slots[0], slots[1], lr, float32 settings.Beta1, float32 settings.Beta2,
                                 float32 settings.Epsilon, float32 settings.WeightDecay, decoupled, step, status, clipped)
