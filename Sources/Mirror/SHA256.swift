import CSHA256

/// SHA-256 (FIPS 180-4) in plain Swift, for the audit log's hash chain. Not constant-time;
/// it hashes public audit rows, never secrets.
///
/// A bulk apply hashes one audit row per change (a quarter of a million for a first sync), so
/// this works on whole 64-byte blocks straight from the caller's buffer, with the message
/// schedule and state in registers or on the stack, and no per-byte appends or arrays. On x86
/// CPUs with the SHA extensions the compression runs in `CSHA256` (about five times faster).
enum SHA256 {
    /// Whether the CPU's SHA instructions are used.
    static let hardware = roster_sha256_hardware_available() != 0

    /// The round constants.
    private static let k: [UInt32] = [
        0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
        0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
        0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
        0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
        0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
        0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
        0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
        0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
    ]

    typealias Digest = (UInt32, UInt32, UInt32, UInt32, UInt32, UInt32, UInt32, UInt32)

    /// The digest of `message`, as eight big-endian words; `portable` forces the Swift compression.
    static func hash(_ message: UnsafeRawBufferPointer, portable: Bool = false) -> Digest {
        var h: Digest = (0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19)
        let count = message.count
        k.withUnsafeBufferPointer { k in
            withUnsafeTemporaryAllocation(of: UInt32.self, capacity: 64) { w in
                let w = w.baseAddress!
                let k = k.baseAddress!
                // Whole blocks straight from the message.
                let whole = count / 64
                let hardware = hardware && !portable
                if let base = message.baseAddress, whole > 0 {
                    if hardware {
                        compressInHardware(&h, base, whole)
                    } else {
                        for block in 0..<whole { compress(&h, base + block * 64, w, k) }
                    }
                }
                // The tail, the 0x80 marker and the bit length: one or two more blocks.
                withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 128) { tail in
                    let tail = UnsafeMutableRawPointer(tail.baseAddress!)
                    tail.initializeMemory(as: UInt8.self, repeating: 0, count: 128)
                    let rest = count - whole * 64
                    if rest > 0 { tail.copyMemory(from: message.baseAddress! + whole * 64, byteCount: rest) }
                    tail.storeBytes(of: 0x80, toByteOffset: rest, as: UInt8.self)
                    let blocks = rest + 9 <= 64 ? 1 : 2
                    tail.storeBytes(of: (UInt64(count) &* 8).bigEndian, toByteOffset: blocks * 64 - 8, as: UInt64.self)
                    if hardware {
                        compressInHardware(&h, UnsafeRawPointer(tail), blocks)
                    } else {
                        for block in 0..<blocks { compress(&h, UnsafeRawPointer(tail + block * 64), w, k) }
                    }
                }
            }
        }
        return h
    }

    @inline(__always)
    private static func compressInHardware(_ h: inout Digest, _ blocks: UnsafeRawPointer, _ count: Int) {
        withUnsafeMutableBytes(of: &h) { state in
            roster_sha256_hardware_blocks(state.baseAddress!.assumingMemoryBound(to: UInt32.self), blocks.assumingMemoryBound(to: UInt8.self), count)
        }
    }

    @inline(__always)
    private static func compress(_ h: inout Digest, _ block: UnsafeRawPointer, _ w: UnsafeMutablePointer<UInt32>, _ k: UnsafePointer<UInt32>) {
        for i in 0..<16 {
            w[i] = UInt32(bigEndian: block.loadUnaligned(fromByteOffset: i &* 4, as: UInt32.self))
        }
        for i in 16..<64 {
            let a = w[i &- 15], b = w[i &- 2]
            let s0 = rotr(a, 7) ^ rotr(a, 18) ^ (a >> 3)
            let s1 = rotr(b, 17) ^ rotr(b, 19) ^ (b >> 10)
            w[i] = w[i &- 16] &+ s0 &+ w[i &- 7] &+ s1
        }
        var (a, b, c, d, e, f, g, hh) = h
        for i in 0..<64 {
            let s1 = rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)
            let ch = (e & f) ^ (~e & g)
            let t1 = hh &+ s1 &+ ch &+ k[i] &+ w[i]
            let s0 = rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)
            let maj = (a & b) ^ (a & c) ^ (b & c)
            hh = g; g = f; f = e; e = d &+ t1; d = c; c = b; b = a; a = t1 &+ s0 &+ maj
        }
        h = (h.0 &+ a, h.1 &+ b, h.2 &+ c, h.3 &+ d, h.4 &+ e, h.5 &+ f, h.6 &+ g, h.7 &+ hh)
    }

    /// The digest of `message` as 32 bytes.
    static func hash(_ message: [UInt8]) -> [UInt8] {
        let h = message.withUnsafeBytes { hash($0) }
        var digest: [UInt8] = []
        digest.reserveCapacity(32)
        for word in [h.0, h.1, h.2, h.3, h.4, h.5, h.6, h.7] {
            digest.append(contentsOf: [UInt8(word >> 24), UInt8(truncatingIfNeeded: word >> 16), UInt8(truncatingIfNeeded: word >> 8), UInt8(truncatingIfNeeded: word)])
        }
        return digest
    }

    /// The lowercase hex digest of `message`.
    static func hex(_ message: UnsafeRawBufferPointer, portable: Bool = false) -> String {
        let h = hash(message, portable: portable)
        return String(unsafeUninitializedCapacity: 64) { out in
            withUnsafeBytes(of: h) { words in
                for i in 0..<8 {
                    let word = words.load(fromByteOffset: i * 4, as: UInt32.self)
                    for j in 0..<8 {
                        let nibble = UInt8(truncatingIfNeeded: word >> UInt32(28 - 4 * j)) & 0xf
                        out[i * 8 + j] = nibble < 10 ? 0x30 + nibble : 0x57 + nibble
                    }
                }
            }
            return 64
        }
    }

    /// The lowercase hex digest of a UTF-8 string.
    static func hex(_ string: String, portable: Bool = false) -> String {
        var string = string
        return string.withUTF8 { hex(UnsafeRawBufferPointer($0), portable: portable) }
    }

    @inline(__always) private static func rotr(_ x: UInt32, _ n: UInt32) -> UInt32 { (x >> n) | (x << (32 &- n)) }
}
