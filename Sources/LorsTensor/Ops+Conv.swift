/// 2-D convolution (im2col + sgemm) and max pooling on NCHW tensors; each backward beside its forward.

/// Tuning of the convolution's column buffer.
enum ConvBuffers {
    /// Images are processed in chunks whose column buffer holds at most this many floats
    /// (at least one image per chunk): big enough for one large sgemm, small enough to stay cached.
    nonisolated(unsafe) static var maxColumnFloats = 1 << 22
}

public extension Tensor {
    /// 2-D cross-correlation with PyTorch's `torch.nn.functional.conv2d` semantics.
    ///
    /// `self [N, C, H, W]`, `weight [O, C/groups, kh, kw]`, `bias [O]` →
    /// `out [N, O, outH, outW]` with `outH = (H + 2·padding.0 − dilation.0·(kh − 1) − 1) / stride.0 + 1`
    /// (likewise W) and, for output channel `o` in group `g = o / (O/groups)`,
    /// `out[n, o, y, x] = bias[o] + Σ_{c, i, j} weight[o, c, i, j] ·
    ///   self[n, g·C/groups + c, y·stride.0 − padding.0 + i·dilation.0, x·stride.1 − padding.1 + j·dilation.1]`
    /// (zero outside the image). Computed as `weight_g · im2col(self[n, g])` per group, images chunked so
    /// the column buffer stays bounded; a 1×1, stride-1, unpadded convolution multiplies the input directly.
    func conv2d(weight: Tensor, bias: Tensor? = nil, stride: (Int, Int) = (1, 1), padding: (Int, Int) = (0, 0),
                dilation: (Int, Int) = (1, 1), groups: Int = 1) -> Tensor {
        precondition(rank == 4 && weight.rank == 4, "conv2d: input \(shape) and weight \(weight.shape) must be 4-D (NCHW, OIHW)")
        let (N, C, H, W) = (shape[0], shape[1], shape[2], shape[3])
        let (O, Cg, kh, kw) = (weight.shape[0], weight.shape[1], weight.shape[2], weight.shape[3])
        precondition(groups > 0 && C % groups == 0 && O % groups == 0,
                     "conv2d: \(C) input and \(O) output channels not divisible into \(groups) groups")
        precondition(Cg == C / groups, "conv2d: weight \(weight.shape) expects \(Cg * groups) input channels, input is \(shape)")
        if let bias { precondition(bias.shape == [O], "conv2d: bias \(bias.shape) for \(O) output channels") }
        let geo = WindowGeometry(inH: H, inW: W, kernel: (kh, kw), stride: stride, padding: padding, dilation: dilation)
        let (outH, outW) = (geo.outH, geo.outW)
        let L = outH * outW, Og = O / groups, K = Cg * kh * kw
        let direct = kh == 1 && kw == 1 && stride == (1, 1) && padding == (0, 0)  // col == input
        let colPerImage = C * kh * kw * L  // C·kh·kw rows of L per image
        let chunk = Swift.max(1, Swift.min(N, ConvBuffers.maxColumnFloats / Swift.max(1, colPerImage)))
        let be = backend
        let x = self

        let out = Tensor(uninitialized: [N, O, outH, outW])
        if let bias {
            // out[n, o, :] = bias[o], then sgemm accumulates (beta = 1).
            be.stridedCopy(src: bias.pointer, srcStrides: [0, 1, 0], dst: out.pointer, dstStrides: [O * L, L, 1],
                           shape: [N, O, L], accumulate: false)
        }
        let beta: Float = bias == nil ? 0 : 1
        /// Column buffer of `images` images starting at `n0` (the input itself when `direct`).
        func columns(_ n0: Int, _ images: Int, into col: Tensor?) -> UnsafePointer<Float> {
            if direct { return UnsafePointer(x.pointer + n0 * C * H * W) }
            be.im2col(input: x.pointer + n0 * C * H * W, images: images, channels: C, geometry: geo, col: col!.pointer)
            return UnsafePointer(col!.pointer)
        }
        let colBuffer = direct ? nil : Tensor(uninitialized: [chunk * colPerImage])
        for n0 in Swift.stride(from: 0, to: N, by: chunk) {
            let images = Swift.min(chunk, N - n0)
            let col = columns(n0, images, into: colBuffer)
            for g in 0..<groups {
                // out[n, g] [Og, L] = weight_g [Og, K] · col[n, g] [K, L], batched over the chunk's images.
                be.gemm(transposeA: false, transposeB: false, m: Og, n: L, k: K, alpha: 1,
                        a: weight.pointer + g * Og * K, lda: K, strideA: 0,
                        b: col + g * K * L, ldb: L, strideB: colPerImage,
                        beta: beta, c: out.pointer + n0 * O * L + g * Og * L, ldc: L, strideC: O * L, batch: images)
            }
        }

        var inputs = [x, weight]
        if let bias { inputs.append(bias) }
        return Tape.shared.record("conv2d", inputs: inputs, output: out) { gOut in
            let gradInput = x.requiresGrad ? Tensor(uninitialized: x.shape) : nil
            let gradWeight = weight.requiresGrad ? Tensor(uninitialized: weight.shape) : nil
            // dcol buffer for dinput (reuses the forward's size class through the allocator cache).
            let colBuffer = direct ? nil : Tensor(uninitialized: [chunk * colPerImage])
            let dcolBuffer = (direct || gradInput == nil) ? nil : Tensor(uninitialized: [chunk * colPerImage])
            var firstWeightUpdate = true
            for n0 in Swift.stride(from: 0, to: N, by: chunk) {
                let images = Swift.min(chunk, N - n0)
                let gChunk = gOut.pointer + n0 * O * L
                if let gradWeight {
                    // dW_g [Og, K] += gOut[n, g] [Og, L] · col[n, g]ᵀ [L, K], summed over images in order.
                    let col = columns(n0, images, into: colBuffer)
                    for i in 0..<images {
                        be.gemm(transposeA: false, transposeB: true, m: Og, n: K, k: L, alpha: 1,
                                a: gChunk + i * O * L, lda: L, strideA: Og * L,
                                b: col + i * colPerImage, ldb: L, strideB: K * L,
                                beta: firstWeightUpdate ? 0 : 1, c: gradWeight.pointer, ldc: K, strideC: Og * K, batch: groups)
                        firstWeightUpdate = false
                    }
                }
                if let gradInput {
                    // dcol[n, g] [K, L] = weight_gᵀ [K, Og] · gOut[n, g] [Og, L]; dinput = col2im(dcol).
                    let target = direct ? gradInput.pointer + n0 * C * H * W : dcolBuffer!.pointer
                    for g in 0..<groups {
                        be.gemm(transposeA: true, transposeB: false, m: K, n: L, k: Og, alpha: 1,
                                a: weight.pointer + g * Og * K, lda: K, strideA: 0,
                                b: gChunk + g * Og * L, ldb: L, strideB: O * L,
                                beta: 0, c: target + g * K * L, ldc: L, strideC: colPerImage, batch: images)
                    }
                    if !direct {
                        be.col2im(col: dcolBuffer!.pointer, images: images, channels: C, geometry: geo,
                                  image: gradInput.pointer + n0 * C * H * W, accumulate: false)
                    }
                }
            }
            // dbias[o] = Σ_{n, y, x} gOut[n, o, y, x]
            let gradBias = bias?.requiresGrad == true ? gOut.detached().sum(axes: [0, 2, 3]) : nil
            return bias == nil ? [gradInput, gradWeight] : [gradInput, gradWeight, gradBias]
        }
    }

    /// 2-D max pooling with PyTorch's `torch.nn.functional.max_pool2d` semantics (`ceil_mode=False`).
    ///
    /// `self [N, C, H, W]` → `out [N, C, outH, outW]`,
    /// `out[n, c, y, x] = max_{i, j} self[n, c, y·stride.0 − padding.0 + i·dilation.0, x·stride.1 − padding.1 + j·dilation.1]`
    /// over `i < kernel.0`, `j < kernel.1`, padding reading as −∞ (`padding ≤ kernel / 2`); `stride`
    /// defaults to `kernel`. The gradient goes to the first maximum in scan order (as PyTorch), located
    /// by indices saved in the forward pass.
    func maxPool2d(kernel: (Int, Int), stride: (Int, Int)? = nil, padding: (Int, Int) = (0, 0),
                   dilation: (Int, Int) = (1, 1)) -> Tensor {
        precondition(rank == 4, "maxPool2d: input \(shape) must be 4-D (NCHW)")
        precondition(padding.0 <= kernel.0 / 2 && padding.1 <= kernel.1 / 2,
                     "maxPool2d: padding \(padding) must be at most half the kernel \(kernel)")
        let (N, C, H, W) = (shape[0], shape[1], shape[2], shape[3])
        precondition(H * W <= 1 << 24, "maxPool2d: \(H)×\(W) plane too large for float-stored indices")
        let geo = WindowGeometry(inH: H, inW: W, kernel: kernel, stride: stride ?? kernel, padding: padding, dilation: dilation)
        let out = Tensor(uninitialized: [N, C, geo.outH, geo.outW])
        let indices = Tensor(uninitialized: out.shape)
        backend.maxPool2d(input: pointer, planes: N * C, geometry: geo, out: out.pointer, indices: indices.pointer)
        let x = self
        return Tape.shared.record("max_pool2d", inputs: [self], output: out) { g in
            let gi = Tensor(uninitialized: x.shape)
            x.backend.maxPool2dBackward(gradOut: g.pointer, indices: indices.pointer, planes: N * C, geometry: geo, gradIn: gi.pointer)
            return [gi]
        }
    }
}
