#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The little file access LDAPKit needs (password files, TLS files), without Foundation.
enum FileAccess {
    static func isReadable(_ path: String) -> Bool {
        access(path, R_OK) == 0
    }

    /// Reads a secret file whole. Fails with a sentence naming the file.
    static func readSecret(_ path: String) throws(LDAPError) -> [UInt8] {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            let reason = String(cString: strerror(errno))
            throw .configuration("The password file '\(path)' cannot be read: \(reason).", target: path)
        }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if count < 0 {
                if errno == EINTR { continue }
                let reason = String(cString: strerror(errno))
                throw .configuration("The password file '\(path)' cannot be read: \(reason).", target: path)
            }
            if count == 0 { break }
            bytes.append(contentsOf: buffer[0..<count])
            if bytes.count > 64 * 1024 {
                throw .configuration("The password file '\(path)' is larger than 64 KiB; it should hold only the password.", target: path)
            }
        }
        // One trailing newline (CRLF or LF) is not part of the password.
        if bytes.last == UInt8(ascii: "\n") { bytes.removeLast() }
        if bytes.last == UInt8(ascii: "\r") { bytes.removeLast() }
        guard !bytes.isEmpty else {
            throw .configuration("The password file '\(path)' is empty.", target: path)
        }
        return bytes
    }
}
