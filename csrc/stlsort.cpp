// libstdc++'s unstable sorts, compiled: pyggml's fast path for the exact tie order.
//
// The reference sorts candidate arrays (llama_token_data: id, logit, p) with std::sort and
// std::partial_sort under the comparator `a.logit > b.logit`; neither is stable, so the order
// of equal logits is whatever libstdc++'s algorithms leave. pyggml/_stlsort.py replays those
// algorithms in Python (the readable specification, diffed against this library in
// tests/sampling/test_stlsort.py); this file runs the same library templates, compiled by the
// same toolchain as the reference, for arrays where the replay would be slow.
//
// Elements carry a position and its key: the algorithms only compare and move elements, so
// the permutation they produce depends on the keys alone, not on the element's layout. Keys
// are doubles: float32 logits convert exactly, and compare as floats do.
#include <algorithm>
#include <cstdint>
#include <vector>

namespace {

struct elem64 {
    int64_t pos;
    double  key;
};

template <typename Sort>
void run(const double * keys, int64_t * order, int64_t n, Sort sort) {
    std::vector<elem64> a(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) {
        a[i] = {order[i], keys[order[i]]};
    }
    sort(a);
    for (int64_t i = 0; i < n; ++i) {
        order[i] = a[i].pos;
    }
}

bool greater(const elem64 & x, const elem64 & y) { return x.key > y.key; }

}  // namespace

extern "C" {

// std::sort(order, order + n, key[a] > key[b]); `order` holds positions into `keys`, in place.
void pyggml_std_sort(const double * keys, int64_t * order, int64_t n) {
    run(keys, order, n, [](std::vector<elem64> & a) { std::sort(a.begin(), a.end(), greater); });
}

// std::partial_sort(order, order + middle, order + n, key[a] > key[b]), in place.
void pyggml_std_partial_sort(const double * keys, int64_t * order, int64_t n, int64_t middle) {
    run(keys, order, n, [middle](std::vector<elem64> & a) {
        std::partial_sort(a.begin(), a.begin() + middle, a.end(), greater);
    });
}

// The reference's bucket partial sort of a candidate array (llama_token_data_array_partial_sort):
// positions grouped by bucket, buckets from the top down until `npartial` are covered, each
// bucket copied in original order, then every bucket above the last std::sort-ed and the last
// std::partial_sort-ed up to what is still missing. `bucket` (0..n_buckets-1) comes from
// pyggml._stlsort.bucket_index. Writes the first `npartial` positions to `out`.
void pyggml_bucket_sort(const double * keys, const int32_t * bucket, int64_t n, int32_t n_buckets,
                        int64_t npartial, int64_t * out) {
    std::vector<int64_t> histo(static_cast<size_t>(n_buckets), 0);
    for (int64_t i = 0; i < n; ++i) {
        histo[bucket[i]]++;
    }
    int32_t last = n_buckets - 1;  // the threshold bucket
    for (int64_t covered = histo[last]; covered < npartial && last > 0;) {
        covered += histo[--last];
    }
    // start of each bucket's run in the grouped copy (top bucket first)
    std::vector<int64_t> start(static_cast<size_t>(n_buckets), 0);
    int64_t total = 0;
    for (int32_t j = n_buckets - 1; j >= last; --j) {
        start[j] = total;
        total += histo[j];
    }
    std::vector<elem64> a(static_cast<size_t>(total));
    std::vector<int64_t> fill(start);
    for (int64_t i = 0; i < n; ++i) {
        if (bucket[i] >= last) {
            a[fill[bucket[i]]++] = {i, keys[i]};
        }
    }
    int64_t done = 0;
    for (int32_t j = n_buckets - 1; j >= last && done < npartial; --j) {
        auto first = a.begin() + start[j];
        auto end   = first + histo[j];
        if (j > last) {
            std::sort(first, end, greater);
        } else {
            std::partial_sort(first, first + std::min<int64_t>(npartial - done, histo[j]), end, greater);
        }
        done += histo[j];
    }
    for (int64_t i = 0; i < npartial && i < total; ++i) {
        out[i] = a[i].pos;
    }
}

}  // extern "C"
