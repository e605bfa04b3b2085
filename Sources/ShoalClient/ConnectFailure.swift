import ShoalAPI
import NIOCore
import NIOPosix

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Why a connection could not be made, in a few words: "connection refused", "connect timed out".
enum ConnectFailure {
    static func describe(_ error: any Error) -> String {
        if let error = error as? NIOConnectionError {
            if let dnsError = error.dnsAError ?? error.dnsAAAAError {
                return "cannot resolve \(error.host): \(dnsError)"
            }
            // One attempt per address; the first says enough.
            return error.connectionErrors.first.map { describe($0.error) } ?? "no address for \(error.host)"
        }
        if let error = error as? IOError {
            return String(cString: strerror(error.errnoCode)).lowercased()
        }
        if case ChannelError.connectTimeout = error {
            return "connect timed out"
        }
        return "\(error)"
    }
}
