// NumPy .npy files: the exchange format with Python-side checks (ml_dtypes
// reference values, test vectors for hardware designers).
//
// Reading accepts format versions 1.0, 2.0 and 3.0 and the plain numeric
// dtypes that lowbit uses; writing produces what np.save (numpy >= 1.24)
// writes, byte for byte: version 1.0, or 2.0 when the header does not fit in
// 65535 bytes, with data aligned to 64 bytes.
//
// Deliberate limits, each rejected with a message that says so:
//   - little-endian data only: '>' (big-endian) arrays are rejected rather
//     than byte-swapped, since numpy never writes them unless asked and a
//     silent swap would hide a producer bug. Convert with arr.astype('<f4').
//   - C order only for ndim > 1 (fortran_order True is the same layout for
//     ndim <= 1 and is accepted there).
//   - no structured, void ('<V2', which is how ml_dtypes' bfloat16 and fp8
//     types are saved), string or object dtypes.
//   - the host must be little-endian (checked at compile time).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace lowbit {

struct NpyArray {
  // Canonical numpy type string: "<f2", "<f4", "<f8", "|i1", "<i2", "<i4",
  // "<i8", "|u1", "<u2", "<u4", "<u8" or "|b1".
  std::string descr;
  std::vector<uint64_t> shape;  // empty for a 0-d (scalar) array
  std::vector<std::byte> data;  // C order, little-endian

  // The product of the shape (1 for a 0-d array). Throws ErrorKind::kInput if
  // it overflows 64 bits.
  uint64_t num_elements() const;
  // Bytes per element; throws ErrorKind::kUsage for an unsupported descr.
  size_t itemsize() const;
};

// Bytes per element of a supported descr, or 0 if lowbit does not support it.
size_t npy_descr_itemsize(std::string_view descr) noexcept;

// Parses a whole .npy file held in memory. Every problem (bad magic, unknown
// version, header beyond the end of the file, malformed header dictionary,
// unsupported dtype, Fortran order, shape whose byte size overflows, data
// size that differs from the shape) throws ErrorKind::kInput with a message
// that starts with `name_for_errors` (usually the path) and names the problem.
NpyArray npy_parse(std::span<const std::byte> bytes, std::string_view name_for_errors);

// The magic, version, header length and padded header dictionary that
// precede the data, as np.save writes them. The returned size is a multiple
// of 64. Throws ErrorKind::kUsage for an unsupported descr.
std::string npy_header(std::string_view descr, std::span<const uint64_t> shape);

// A complete .npy file: npy_header followed by the data. Throws
// ErrorKind::kUsage for an unsupported descr and ErrorKind::kInternal when
// data_bytes does not equal the shape's element count times the item size.
std::vector<std::byte> npy_serialize(std::string_view descr, std::span<const uint64_t> shape,
                                     const void* data, size_t data_bytes);

// Reads and parses `path`: ErrorKind::kIo if it cannot be read,
// ErrorKind::kInput if it is not a valid .npy file.
NpyArray npy_read(const std::string& path);

// Writes a .npy file through AtomicFile, so that a failure leaves no partial
// file. Throws as npy_serialize does, and ErrorKind::kIo for write errors.
void npy_write_atomic(const std::string& path, std::string_view descr,
                      std::span<const uint64_t> shape, const void* data, size_t bytes);

}  // namespace lowbit
