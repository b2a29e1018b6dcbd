//! The policy's linear layers as one backend op, `y = act(x W + b)`, whose
//! products are split across the machine's threads by ftb itself.
//!
//! Why: burn-flex hands a large product to `gemm`'s own rayon split, which
//! gains nothing on this project's 2-core machines (512^3 ran at 103-108
//! GFLOP/s on 2 threads against 102-123 on 1: BENCHMARKS.md), and a small one
//! (a batch-16 learner step) to one thread. Here every product (forward
//! `x W`, input gradient `dz W^T`, weight gradient `x^T dz`) is cut along the
//! longer side of its output into one piece per thread, each a
//! single-threaded `gemm` call writing its own block: no partial sums, so
//! the result has the same bits on any number of threads. The pieces run on
//! [`super::team`]'s spinning helpers, not on rayon's sleeping workers:
//! waking a sleeping core for each of a step's dozen splits cost more than a
//! small product's second half saved. [`product`] runs the same code, for
//! benchmarks at the learner's shapes.
//!
//! The bias and the LeakyReLU take one pass after the forward product, and
//! `dz = g * act'(y)` with the bias gradient one pass backward: fewer
//! full-size passes than burn's composition (product, bias, three for the
//! activation).
//! The backward reads the activation's slope from the output's sign, which
//! needs a positive slope; other slopes (and other dtypes) use burn's ops.

use super::fused::leaky_gain;
use super::team;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::{FlexTensor, Layout};
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, Backend, DType, Dispatch, Flex, TensorMetadata, backend_extension};
use burn::tensor::{Bytes, Shape, Tensor};

/// A fused linear layer (a burn backend extension, routed by `Dispatch`).
#[backend_extension(Flex, Autodiff)]
pub trait LinearOps: Backend {
    /// `x [n, i] W [i, o] + b [o]`, then LeakyReLU with `slope` when
    /// `activate`.
    fn fused_linear(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        activate: bool,
        slope: f64,
    ) -> FloatTensor<Self>;
}

/// `x W + b`, followed by LeakyReLU(`slope`) when `activate`: one op forward
/// and backward, its products on as many threads as the current rayon pool
/// has (`run.threads`).
///
/// ```
/// use burn::tensor::{Device, Tensor, TensorData};
/// let d = Device::flex();
/// let x = Tensor::<2>::from_data(TensorData::new(vec![1.0f32, -2.0], [1, 2]), &d);
/// let w = Tensor::<2>::from_data(TensorData::new(vec![1.0f32, 0.0, 0.0, 1.0], [2, 2]), &d);
/// let b = Tensor::<1>::from_data(TensorData::new(vec![0.5f32, 0.5], [2]), &d);
/// let y: Vec<f32> = ftb::policy::linear::linear(x, w, b, Some(0.1)).into_data().try_to_vec().unwrap();
/// assert_eq!(y, vec![1.5, -0.15]);
/// ```
pub fn linear(x: Tensor<2>, weight: Tensor<2>, bias: Tensor<1>, slope: Option<f64>) -> Tensor<2> {
    Tensor::from_dispatch(<Dispatch as LinearOps>::fused_linear(
        x.into_dispatch(),
        weight.into_dispatch(),
        bias.into_dispatch(),
        slope.is_some(),
        slope.unwrap_or(0.0),
    ))
}

/// Multiply-adds below which a piece is not worth a thread (~10 us of work).
const MIN_MACS_PER_THREAD: usize = 1 << 20;

/// Threads a split may use: those of the current rayon pool (`--threads`,
/// `run.threads`), the caller included.
fn threads() -> usize {
    rayon::current_num_threads()
}

/// How many pieces to cut a product of `macs` multiply-adds into, along a
/// dimension of `len`: one per thread, fewer when the pieces would be small.
fn pieces(macs: usize, len: usize) -> usize {
    threads().min(macs / MIN_MACS_PER_THREAD).min(len).max(1)
}

/// `[start, end)` of piece `p` of `len` cut into `k` near-equal pieces.
fn piece(len: usize, k: usize, p: usize) -> (usize, usize) {
    (len * p / k, len * (p + 1) / k)
}

/// A raw pointer that may cross threads: each piece writes a disjoint block.
#[derive(Clone, Copy)]
struct SendPtr(*mut f32);
unsafe impl Send for SendPtr {}
unsafe impl Sync for SendPtr {}

/// A matrix operand: first element, column stride and row stride (elements).
#[derive(Clone, Copy)]
struct Operand {
    ptr: *const f32,
    cs: isize,
    rs: isize,
}
unsafe impl Send for Operand {}
unsafe impl Sync for Operand {}

impl Operand {
    /// A row-major `[rows, cols]` matrix, or the transpose of one stored as
    /// row-major `[cols, rows]`.
    fn of(values: &[f32], cols_stored: usize, transposed: bool) -> Self {
        let (cs, rs) = if transposed {
            (cols_stored as isize, 1)
        } else {
            (1, cols_stored as isize)
        };
        Self {
            ptr: values.as_ptr(),
            cs,
            rs,
        }
    }

    /// The operand from row `r` and column `c` on.
    fn at(self, r: usize, c: usize) -> Self {
        Self {
            // SAFETY: callers stay inside the operand (wrapping_offset never
            // dereferences; gemm reads only the addressed block).
            ptr: self
                .ptr
                .wrapping_offset(r as isize * self.rs + c as isize * self.cs),
            ..self
        }
    }
}

/// `lhs [m, k] * rhs [k, n]` as a new row-major `[m, n]` matrix, cut along
/// the longer side of the output into one piece per thread (no partial
/// sums), each piece a single-threaded `gemm` call. The output is never
/// zeroed first: every element is written by exactly one piece.
///
/// # Safety
/// `lhs` and `rhs` must address `m x k` and `k x n` valid elements.
unsafe fn split_gemm((m, n, k): (usize, usize, usize), lhs: Operand, rhs: Operand) -> Vec<f32> {
    if m == 0 || n == 0 || k == 0 {
        return vec![0.0; m * n];
    }
    let mut dst: Vec<f32> = Vec::with_capacity(m * n);
    let by_rows = m >= n;
    let pieces = pieces(m * n * k, if by_rows { m } else { n });
    let out = SendPtr(dst.as_mut_ptr());
    let one = |p: usize| {
        // Rebinding makes the closure capture the whole `SendPtr` (which is
        // `Send`), not its raw-pointer field (which is not).
        #[allow(clippy::redundant_locals)]
        let out = out;
        let (r, c, rows, cols) = if by_rows {
            let (a, b) = piece(m, pieces, p);
            (a, 0, b - a, n)
        } else {
            let (a, b) = piece(n, pieces, p);
            (0, a, m, b - a)
        };
        // SAFETY: the block rows r.., columns c.. of dst is written by this
        // piece alone; lhs rows r.. and rhs columns c.. are inside the operands.
        unsafe {
            let (l, rh) = (lhs.at(r, 0), rhs.at(0, c));
            gemm::gemm(
                rows,
                cols,
                k,
                out.0.add(r * n + c),
                1,
                n as isize,
                false,
                l.ptr,
                l.cs,
                l.rs,
                rh.ptr,
                rh.cs,
                rh.rs,
                0.0f32,
                1.0f32,
                false,
                false,
                false,
                gemm::Parallelism::None,
            );
        }
    };
    team::run(pieces, threads(), &one);
    // SAFETY: the pieces wrote all m x n elements (read_dst = false: gemm
    // never reads the uninitialised destination).
    unsafe { dst.set_len(m * n) };
    dst
}

/// `a [m, k] * b [k, n]` (each given row-major, or as the row-major storage
/// of its transpose), computed as the fused layer computes its products: for
/// benchmarks of the learner's products at their own shapes.
///
/// ```
/// let a = [1.0f32, 2.0, 3.0, 4.0]; // [[1, 2], [3, 4]]
/// let b = [1.0f32, 0.0, 1.0, 1.0]; // stored [[1, 0], [1, 1]], used transposed
/// let c = ftb::policy::linear::product((2, 2, 2), &a, false, &b, true);
/// assert_eq!(c, vec![1.0, 3.0, 3.0, 7.0]);
/// ```
pub fn product(
    (m, k, n): (usize, usize, usize),
    a: &[f32],
    a_transposed: bool,
    b: &[f32],
    b_transposed: bool,
) -> Vec<f32> {
    assert!(
        a.len() == m * k && b.len() == k * n,
        "product: operand sizes"
    );
    let lhs = Operand::of(a, if a_transposed { m } else { k }, a_transposed);
    let rhs = Operand::of(b, if b_transposed { k } else { n }, b_transposed);
    // SAFETY: the operands hold m x k and k x n elements (checked above).
    unsafe { split_gemm((m, n, k), lhs, rhs) }
}

/// A contiguous f32 tensor's elements.
fn elems(t: &FlexTensor) -> &[f32] {
    let (start, end) = t
        .layout()
        .contiguous_offsets()
        .expect("a contiguous tensor");
    &t.storage::<f32>()[start..end]
}

fn tensor(values: Vec<f32>, dims: &[usize]) -> FlexTensor {
    FlexTensor::new(
        Bytes::from_elems(values),
        Layout::contiguous(Shape::from(dims.to_vec())),
        DType::F32,
    )
}

/// Checks the shapes and returns `(n, i, o)`.
fn dims(x: &FlexTensor, w: &FlexTensor, b: &FlexTensor) -> (usize, usize, usize) {
    let (xs, ws, bs) = (x.shape(), w.shape(), b.shape());
    assert!(
        xs.num_dims() == 2 && ws.num_dims() == 2 && bs.num_dims() == 1,
        "fused_linear: x [n, i], weight [i, o], bias [o]; got {xs:?}, {ws:?}, {bs:?}"
    );
    assert!(
        xs[1] == ws[0] && bs[0] == ws[1],
        "fused_linear: x {xs:?}, weight {ws:?} and bias {bs:?} do not fit"
    );
    (xs[0], ws[0], ws[1])
}

/// The forward pass on f32 contiguous tensors: the product over every
/// thread, then bias and activation over row pieces.
fn forward_f32(x: &FlexTensor, w: &FlexTensor, b: &FlexTensor, act: Option<f32>) -> FlexTensor {
    let (n, i, o) = dims(x, w, b);
    let (xv, wv, bv) = (elems(x), elems(w), elems(b));
    // SAFETY: x is [n, i] and W is [i, o], both contiguous.
    let mut y = unsafe {
        split_gemm(
            (n, o, i),
            Operand::of(xv, i, false),
            Operand::of(wv, o, false),
        )
    };
    if o > 0 {
        // Branch-free (vectorised): slope 1 is no activation.
        let slope = act.unwrap_or(1.0);
        let k = pieces(n * o * 16, n);
        let out = SendPtr(y.as_mut_ptr());
        team::run(k, threads(), &|p| {
            #[allow(clippy::redundant_locals)]
            let out = out;
            let (a, b) = piece(n, k, p);
            // SAFETY: rows a..b of y are this piece's alone.
            let rows = unsafe { std::slice::from_raw_parts_mut(out.0.add(a * o), (b - a) * o) };
            for row in rows.chunks_exact_mut(o) {
                for (v, &bias) in row.iter_mut().zip(bv) {
                    let z = *v + bias;
                    *v = z * leaky_gain(z, slope);
                }
            }
        });
    }
    tensor(y, &[n, o])
}

/// Gradients of the fused layer from the upstream `g`: `(dx, dW, db)`, each
/// only when asked for.
struct Grads {
    dx: Option<FlexTensor>,
    dw: Option<FlexTensor>,
    db: Option<FlexTensor>,
}

/// The backward pass on f32 tensors: `dz = g * act'(y)` and `db` in one pass
/// over row pieces, then `dx = dz W^T` over row pieces and `dW = x^T dz` over
/// pieces of `dW`.
#[allow(clippy::too_many_arguments)]
fn backward_f32(
    x: &FlexTensor,
    w: &FlexTensor,
    y: &FlexTensor,
    grad: FlexTensor,
    act: Option<f32>,
    want: [bool; 3],
) -> Grads {
    let (n, o) = (y.shape()[0], y.shape()[1]);
    let i = w.shape()[0];
    // dz = g * act'(y), branch-free, in place in the upstream gradient when
    // this op holds its only reference (no copy); without activation dz is g.
    let mut g = if grad.is_contiguous() {
        grad
    } else {
        grad.to_contiguous()
    };
    // Row pieces for the element-wise passes.
    let k = pieces(n * o * 16, n);
    if let Some(slope) = act {
        if g.try_storage_mut::<f32>().is_none() {
            g = tensor(elems(&g).to_vec(), &[n, o]);
        }
        let (start, end) = g.layout().contiguous_offsets().expect("contiguous");
        let d = &mut g.try_storage_mut::<f32>().expect("uniquely owned")[start..end];
        let (out, yv) = (SendPtr(d.as_mut_ptr()), elems(y));
        team::run(k, threads(), &|p| {
            #[allow(clippy::redundant_locals)]
            let out = out;
            let (a, b) = piece(n, k, p);
            // SAFETY: rows a..b of dz are this piece's alone.
            let d = unsafe { std::slice::from_raw_parts_mut(out.0.add(a * o), (b - a) * o) };
            for (d, &y) in d.iter_mut().zip(&yv[a * o..b * o]) {
                *d *= leaky_gain(y, slope);
            }
        });
    }
    let dz = elems(&g);
    // db: column sums of dz, cut into column pieces: every column is summed
    // over all rows in row order by one piece, so db does not depend on the
    // number of threads.
    let db = (want[2] && o > 0).then(|| {
        let k = pieces(n * o * 16, o);
        let mut db = vec![0.0f32; o];
        let out = SendPtr(db.as_mut_ptr());
        team::run(k, threads(), &|p| {
            #[allow(clippy::redundant_locals)]
            let out = out;
            let (a, b) = piece(o, k, p);
            // SAFETY: columns a..b of db are this piece's alone.
            let acc = unsafe { std::slice::from_raw_parts_mut(out.0.add(a), b - a) };
            for row in dz.chunks_exact(o) {
                acc.iter_mut().zip(&row[a..b]).for_each(|(a, &v)| *a += v);
            }
        });
        tensor(db, &[o])
    });
    let db = db.or_else(|| want[2].then(|| tensor(Vec::new(), &[0])));
    let wv = elems(w);
    // SAFETY (both products): dz is [n, o], W is [i, o] and x is [n, i],
    // all contiguous; W^T and x^T are read through strides.
    let dx = want[0].then(|| {
        let dx = unsafe {
            split_gemm(
                (n, i, o),
                Operand::of(dz, o, false),
                Operand::of(wv, o, true),
            )
        };
        tensor(dx, &[n, i])
    });
    let dw = want[1].then(|| {
        let dw = unsafe {
            split_gemm(
                (i, o, n),
                Operand::of(elems(x), i, true),
                Operand::of(dz, o, false),
            )
        };
        tensor(dw, &[i, o])
    });
    Grads { dx, dw, db }
}

/// burn's composition on any backend: the reference, and the path for other
/// dtypes and non-positive slopes.
fn composed<B: Backend>(
    x: FloatTensor<B>,
    w: FloatTensor<B>,
    b: FloatTensor<B>,
    activate: bool,
    slope: f64,
) -> FloatTensor<B> {
    let o = w.shape()[1];
    let y = B::float_add(
        B::float_matmul(x, w),
        B::float_reshape(b, Shape::from(vec![1, o])),
    );
    if activate {
        B::leaky_relu(y, slope.into())
    } else {
        y
    }
}

/// Whether the fused f32 kernels apply.
fn fused_applies(dtypes: [DType; 3], activate: bool, slope: f64) -> bool {
    dtypes.iter().all(|&d| d == DType::F32) && (!activate || slope > 0.0)
}

impl LinearOps for Flex {
    fn fused_linear(
        x: FlexTensor,
        weight: FlexTensor,
        bias: FlexTensor,
        activate: bool,
        slope: f64,
    ) -> FlexTensor {
        if !fused_applies([x.dtype(), weight.dtype(), bias.dtype()], activate, slope) {
            return composed::<Flex>(x, weight, bias, activate, slope);
        }
        let (x, w, b) = (
            x.to_contiguous(),
            weight.to_contiguous(),
            bias.to_contiguous(),
        );
        forward_f32(&x, &w, &b, activate.then_some(slope as f32))
    }
}

impl<C: CheckpointStrategy> LinearOps for Autodiff<Flex, C> {
    fn fused_linear(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        activate: bool,
        slope: f64,
    ) -> FloatTensor<Self> {
        #[derive(Debug)]
        struct FusedLinear;

        impl Backward<Flex, 3> for FusedLinear {
            /// The input, the weight, the output and the slope (if any).
            type State = (FlexTensor, FlexTensor, FlexTensor, Option<f32>);

            fn backward(
                self,
                ops: Ops<Self::State, 3>,
                grads: &mut Gradients,
                _: &mut Checkpointer,
            ) {
                let Ops {
                    parents,
                    node,
                    state: (x, w, y, act),
                } = ops;
                let grad = grads.consume::<Flex>(&node);
                let want = [0, 1, 2].map(|k| parents[k].is_some());
                let Grads { dx, dw, db } = backward_f32(&x, &w, &y, grad, act, want);
                let [px, pw, pb] = parents;
                for (parent, g) in [(px, dx), (pw, dw), (pb, db)] {
                    if let (Some(parent), Some(g)) = (parent, g) {
                        grads.register::<Flex>(parent.id, g);
                    }
                }
            }
        }

        if !fused_applies([x.dtype(), weight.dtype(), bias.dtype()], activate, slope) {
            return composed::<Self>(x, weight, bias, activate, slope);
        }
        let (xp, xn) = x.into_parts();
        let (wp, wn) = weight.into_parts();
        let (bp, bn) = bias.into_parts();
        let (xp, wp, bp) = (xp.to_contiguous(), wp.to_contiguous(), bp.to_contiguous());
        let act = activate.then_some(slope as f32);
        match FusedLinear
            .prepare::<C>([xn, wn, bn])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let y = forward_f32(&xp, &wp, &bp, act);
                prep.finish((xp, wp, y.clone(), act), y)
            }
            OpsKind::UnTracked(prep) => prep.finish(forward_f32(&xp, &wp, &bp, act)),
        }
    }
}
