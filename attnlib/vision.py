"""Images as sequences of patches: the input side of a Vision Transformer.

A Vision Transformer (Dosovitskiy et al., 2020) cuts an image into square patches,
flattens each patch into a vector and maps it linearly to ``d_model`` numbers.
After that, the patches are tokens and attention treats them like words.
Chapter 6 ("Real-world impact") uses these functions.
"""

from __future__ import annotations

import numpy as np

from attnlib._validate import as_float_array, check_finite, positive_int


def image_to_patches(image, patch_size: int) -> np.ndarray:
    """Cut an image into non-overlapping square patches, each flattened to a row.

    Patches are listed row by row (left to right, then top to bottom), the order
    a Vision Transformer reads them in.

    .. math:: \\text{patch}_{r c} = \\text{image}[rP:(r+1)P,\\; cP:(c+1)P]

    Parameters
    ----------
    image : array_like, shape (H, W) or (H, W, C)
        ``H`` and ``W`` must be multiples of ``patch_size``.
    patch_size : int
        Side ``P`` of a patch in pixels.

    Returns
    -------
    ndarray, shape (H/P * W/P, P * P * C)
        One flattened patch per row (``C = 1`` for a grey image).

    Examples
    --------
    >>> image = np.arange(16).reshape(4, 4)
    >>> image_to_patches(image, 2)
    array([[ 0.,  1.,  4.,  5.],
           [ 2.,  3.,  6.,  7.],
           [ 8.,  9., 12., 13.],
           [10., 11., 14., 15.]])
    """
    image = as_float_array(image, "image", min_ndim=2)
    P = positive_int(patch_size, "patch_size")
    if image.ndim == 2:
        image = image[:, :, None]  # (H, W) -> (H, W, 1)
    if image.ndim != 3:
        raise ValueError(f"image must have shape (H, W) or (H, W, C), got shape {image.shape}")
    H, W, C = image.shape
    if H % P or W % P:
        raise ValueError(
            f"image of height {H} and width {W} cannot be cut into {P}x{P} patches; "
            f"expected both to be multiples of {P} (crop the image first)"
        )
    grid = image.reshape(H // P, P, W // P, P, C)  # (rows, P, cols, P, C)
    grid = grid.transpose(0, 2, 1, 3, 4)  # (rows, cols, P, P, C): one patch per (row, col)
    return grid.reshape((H // P) * (W // P), P * P * C)  # (n_patches, P*P*C)


def pca_patch_projection(patches, d_model: int) -> tuple[np.ndarray, np.ndarray]:
    """A linear patch embedding taken from the patches' principal components.

    A trained Vision Transformer *learns* its patch embedding ``W_e``.  Without
    training, the ``d_model`` directions along which these patches vary most are
    a fair, deterministic stand-in: similar-looking patches get similar vectors.

    .. math:: W_e = \\text{top } d_{model} \\text{ right singular vectors of } (X - \\bar{x})

    Parameters
    ----------
    patches : array_like, shape (n_patches, patch_dim)
    d_model : int
        Embedding width, at most ``min(n_patches, patch_dim)``.

    Returns
    -------
    mean : ndarray, shape (patch_dim,)
        The average patch, subtracted before projecting.
    W_e : ndarray, shape (patch_dim, d_model)
        Orthonormal columns; the sign of each is fixed so that its largest entry is positive.

    Examples
    --------
    >>> X = np.array([[0.0, 0.0], [2.0, 0.0], [4.0, 0.0]])
    >>> mean, W_e = pca_patch_projection(X, 1)
    >>> mean, W_e
    (array([2., 0.]), array([[1.],
           [0.]]))
    """
    X = as_float_array(patches, "patches", min_ndim=2)
    if X.ndim != 2:
        raise ValueError(f"patches must have shape (n_patches, patch_dim), got shape {X.shape}")
    check_finite(X, "patches")
    limit = min(X.shape)
    d_model = positive_int(d_model, "d_model")
    if d_model > limit:
        raise ValueError(f"d_model must be an integer between 1 and {limit} for patches of shape "
                         f"{X.shape}, got {d_model!r}")
    mean = X.mean(axis=0)  # (patch_dim,)
    W_e = _top_principal_directions(X - mean, d_model)  # (patch_dim, d_model)
    biggest = np.argmax(np.abs(W_e), axis=0)  # (d_model,)
    W_e = W_e * np.sign(W_e[biggest, np.arange(d_model)])  # a deterministic sign per column
    return mean, W_e


def _top_principal_directions(Xc: np.ndarray, d: int) -> np.ndarray:
    """The ``d`` leading right singular vectors of centred data ``Xc (n, p)``, as columns.

    Uses the eigenvectors of the smaller of ``Xc Xc^T (n, n)`` and ``Xc^T Xc (p, p)``: the
    same directions as an SVD, at a fraction of its cost when ``n`` and ``p`` differ a lot.
    """
    n, p = Xc.shape
    if p <= n:
        _, vecs = np.linalg.eigh(Xc.T @ Xc)  # (p, p) @ ... -> eigenvectors (p, p), ascending
        return vecs[:, ::-1][:, :d]  # (p, d)
    vals, U = np.linalg.eigh(Xc @ Xc.T)  # (n, n): eigenvalues are the squared singular values
    vals, U = vals[::-1][:d], U[:, ::-1][:, :d]  # (d,), (n, d): largest first
    if vals[-1] <= 1e-12 * max(vals[0], 1e-300):  # fewer than d directions with any variance
        return np.linalg.svd(Xc, full_matrices=False)[2][:d].T  # (p, d)
    return (Xc.T @ U) / np.sqrt(vals)  # (p, n) @ (n, d) -> (p, d): unit columns


def embed_patches(patches, mean, W_e) -> np.ndarray:
    """Map flattened patches to ``d_model``-dimensional token vectors.

    .. math:: E = (X - \\bar{x})\\, W_e

    Parameters
    ----------
    patches : array_like, shape (..., n_patches, patch_dim)
    mean : array_like, shape (patch_dim,)
    W_e : array_like, shape (patch_dim, d_model)

    Returns
    -------
    ndarray, shape (..., n_patches, d_model)

    Examples
    --------
    >>> embed_patches([[1.0, 2.0]], [0.0, 0.0], [[1.0], [1.0]])
    array([[3.]])
    """
    X = as_float_array(patches, "patches", min_ndim=1)
    mean = as_float_array(mean, "mean", min_ndim=1)
    W_e = as_float_array(W_e, "W_e", min_ndim=2)
    if W_e.ndim != 2 or X.shape[-1] != W_e.shape[0] or mean.shape != (W_e.shape[0],):
        raise ValueError(
            f"expected patches (..., patch_dim), mean (patch_dim,) and W_e (patch_dim, d_model) "
            f"with one patch_dim; got patches {X.shape}, mean {mean.shape}, W_e {W_e.shape}"
        )
    return (X - mean) @ W_e  # (..., n_patches, patch_dim) @ (patch_dim, d_model) -> (..., n_patches, d_model)
