"""Tests for attnlib.vision: patches as tokens (chapter 6)."""

import numpy as np
import pytest

from attnlib.vision import embed_patches, image_to_patches, pca_patch_projection


def reference_patches(image, P):
    """Plain loops: patch (r, c) is image[r*P:(r+1)*P, c*P:(c+1)*P], flattened row-major."""
    H, W, C = image.shape
    rows = []
    for r in range(H // P):
        for c in range(W // P):
            rows.append(image[r * P:(r + 1) * P, c * P:(c + 1) * P, :].reshape(-1))
    return np.array(rows)


@pytest.mark.parametrize("shape,P", [((6, 4, 3), 2), ((9, 6, 1), 3), ((4, 4, 2), 4), ((5, 5, 3), 1)])
def test_patches_match_loops(shape, P):
    image = np.random.default_rng(0).normal(size=shape)
    patches = image_to_patches(image, P)
    np.testing.assert_array_equal(patches, reference_patches(image, P))


def test_grey_image_gets_one_channel():
    image = np.arange(36.0).reshape(6, 6)
    assert image_to_patches(image, 3).shape == (4, 9)
    np.testing.assert_array_equal(image_to_patches(image, 3)[1], image[:3, 3:].ravel())


def test_bad_inputs_say_what_was_expected():
    with pytest.raises(ValueError, match="multiples of 4"):
        image_to_patches(np.zeros((6, 8, 3)), 4)
    with pytest.raises(TypeError, match="patch_size must be an integer"):
        image_to_patches(np.zeros((4, 4)), 2.0)
    with pytest.raises(ValueError, match="patch_size must be an integer >= 1"):
        image_to_patches(np.zeros((4, 4)), 0)
    with pytest.raises(ValueError, match=r"\(H, W\) or \(H, W, C\)"):
        image_to_patches(np.zeros((2, 4, 4, 3)), 2)
    with pytest.raises(ValueError, match="d_model must be an integer between 1 and 3"):
        pca_patch_projection(np.zeros((3, 5)), 4)
    with pytest.raises(ValueError, match="patch_dim"):
        embed_patches(np.zeros((3, 5)), np.zeros(4), np.zeros((4, 2)))


def test_pca_projection_is_orthonormal_and_keeps_most_variance():
    rng = np.random.default_rng(1)
    # patches that vary mostly along two directions, plus a little noise
    basis = rng.normal(size=(2, 12))
    X = rng.normal(size=(50, 2)) * [5.0, 3.0] @ basis + 0.01 * rng.normal(size=(50, 12)) + 7.0
    mean, W_e = pca_patch_projection(X, 2)
    np.testing.assert_allclose(mean, X.mean(axis=0))
    np.testing.assert_allclose(W_e.T @ W_e, np.eye(2), atol=1e-10)
    E = embed_patches(X, mean, W_e)
    kept = np.sum(E**2) / np.sum((X - mean) ** 2)
    assert kept > 0.999
    # the embedding is exactly the centred patches times W_e
    np.testing.assert_allclose(E, (X - X.mean(axis=0)) @ W_e)


def test_pca_projection_is_deterministic_in_sign():
    X = np.random.default_rng(2).normal(size=(20, 6))
    _, W1 = pca_patch_projection(X, 3)
    _, W2 = pca_patch_projection(X.copy(), 3)
    np.testing.assert_array_equal(W1, W2)
    for col in W1.T:
        assert col[np.argmax(np.abs(col))] > 0


@pytest.mark.parametrize("shape", [(10, 40), (40, 10), (12, 12)])
def test_pca_projection_matches_the_svd(shape):
    X = np.random.default_rng(3).normal(size=shape) @ np.diag(np.linspace(3, 1, shape[1]))
    mean, W_e = pca_patch_projection(X, 4)
    Vt = np.linalg.svd(X - X.mean(axis=0), full_matrices=False)[2][:4]  # (4, patch_dim)
    for got, ref in zip(W_e.T, Vt, strict=True):
        np.testing.assert_allclose(np.abs(got @ ref), 1.0, atol=1e-8)  # same direction, up to sign


def test_pca_projection_of_rank_deficient_patches_stays_orthonormal():
    X = np.zeros((4, 9))
    X[1, 0], X[2, 1] = 1.0, 2.0  # only two directions vary; ask for three
    _, W_e = pca_patch_projection(X, 3)
    np.testing.assert_allclose(W_e.T @ W_e, np.eye(3), atol=1e-10)
