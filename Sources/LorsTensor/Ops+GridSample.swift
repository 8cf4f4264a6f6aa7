/// Bilinear grid sampling (`torch.nn.functional.grid_sample`); backward beside forward.
public extension Tensor {
    /// Samples `self [N, C, H_in, W_in]` at the normalised points `grid [N, H_out, W_out, 2]` →
    /// `[N, C, H_out, W_out]`, exactly `torch.nn.functional.grid_sample(self, grid, mode="bilinear",
    /// padding_mode="zeros", align_corners=False)`.
    ///
    /// `grid[n, h, w] = (x, y)` with −1/+1 at the outer edges of the image; the pixel position is
    /// `ix = ((x + 1)·W_in − 1) / 2`, `iy = ((y + 1)·H_in − 1) / 2` and
    /// `out[n, c, h, w] = Σ_{corners (px, py)} (1 − |ix − px|)(1 − |iy − py|) · self[n, c, py, px]` over the four
    /// integer neighbours, those outside the image reading as zero. Gradients flow to both `self`
    /// (a deterministic scatter, one thread per `(n, c)` plane) and `grid` (`∂out/∂x = (W_in/2)·∂out/∂ix`,
    /// likewise y). For grouped sampling (AdaMixer) fold the groups into N: `[B·G, C/G, H, W]` with the
    /// queries as `H_out` and the points as `W_out`.
    func gridSample(_ grid: Tensor) -> Tensor {
        precondition(rank == 4, "gridSample: input \(shape) must be 4-D (NCHW)")
        precondition(grid.rank == 4 && grid.shape[0] == shape[0] && grid.shape[3] == 2,
                     "gridSample: grid \(grid.shape) must be [\(shape[0]), H_out, W_out, 2] for input \(shape)")
        let (N, C, H, W) = (shape[0], shape[1], shape[2], shape[3])
        let (outH, outW) = (grid.shape[1], grid.shape[2])
        let out = Tensor(uninitialized: [N, C, outH, outW])
        backend.gridSample(input: pointer, grid: grid.pointer, batch: N, channels: C, inH: H, inW: W,
                           outH: outH, outW: outW, out: out.pointer)
        let x = self
        return Tape.shared.record("grid_sample", inputs: [self, grid], output: out) { g in
            let gradInput = x.requiresGrad ? Tensor(uninitialized: x.shape) : nil
            let gradGrid = grid.requiresGrad ? Tensor(uninitialized: grid.shape) : nil
            x.backend.gridSampleBackward(input: x.pointer, grid: grid.pointer, gradOut: g.pointer, batch: N, channels: C,
                                         inH: H, inW: W, outH: outH, outW: outW,
                                         gradInput: gradInput?.pointer, gradGrid: gradGrid?.pointer)
            return [gradInput, gradGrid]
        }
    }
}
