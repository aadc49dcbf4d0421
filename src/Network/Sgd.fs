namespace Hybrid.Classifier

open Hybrid.Dsp

/// Settings of stochastic gradient descent (PyTorch's torch.optim.SGD semantics).
type SgdSettings =
    { LearningRate: float
      /// Momentum factor (0 for plain SGD).
      Momentum: float
      /// Nesterov momentum (Sutskever et al. 2013).
      Nesterov: bool
      /// L2 penalty added to the gradient.
      WeightDecay: float }

/// SGD's update rule (PyTorch's torch.optim.SGD): g = grad + WeightDecay p; v = Momentum v + g;
/// p -= lr (Nesterov ? g + Momentum v : v). One slot per parameter: the velocity v (which holds g with momentum 0).
module internal SgdRule =
    /// Slots of state per parameter: the velocity.
    let slotCount = 1

    /// One step of `value` (any shape) with its gradient `grad` and its slots [| velocity |] (the same shape) at
    /// learning rate `lr` (the schedule already applied), on the engine's `ops`.
    let update (ops: INnOps) (settings: SgdSettings) (lr: float32) (value: Tensor) (grad: Tensor) (slots: Tensor[]) =
        ops.SgdUpdate(value, grad, slots[0], lr, float32 settings.Momentum, settings.Nesterov, float32 settings.WeightDecay)

    /// `update` over a device engine's flat parameters `values` and gradients `grads` (see `Model.Flat`) with the flat
    /// slots, in one launch: skipped on the device while `status` records a non-finite loss, the gradient first
    /// multiplied by `status`'s clipping scale when `clipped` (`INnDeviceTraining.SgdUpdateGuarded`).
    let updateFlat (device: INnDeviceTraining) (settings: SgdSettings) (lr: float32) (values: Tensor) (grads: Tensor)
                   (slots: Tensor[]) (status: Tensor) (clipped: bool) =
        device.SgdUpdateGuarded(values, grads, slots[0], lr, float32 settings.Momentum, settings.Nesterov,
                                float32 settings.WeightDecay, status, clipped)
