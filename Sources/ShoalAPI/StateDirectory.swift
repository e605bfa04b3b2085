#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Where the broker keeps its database and token, and where the CLI looks for the token.
public enum StateDirectory {
    /// `explicit` (`--state-dir`), else `$SHOAL_STATE_DIR`, else `$XDG_STATE_HOME/shoal`, else
    /// `$HOME/.local/state/shoal`. Empty variables count as unset, as the XDG spec says.
    public static func resolve(_ explicit: String?) -> String {
        if let explicit { return explicit }
        if let directory = environment("SHOAL_STATE_DIR") { return directory }
        if let stateHome = environment("XDG_STATE_HOME") { return stateHome + "/shoal" }
        return homeDirectory() + "/.local/state/shoal"
    }

    private static func homeDirectory() -> String {
        if let home = environment("HOME") { return home }
        if let entry = getpwuid(getuid()), let directory = entry.pointee.pw_dir { return String(cString: directory) }
        return "."
    }
}

/// Where the broker listens, for its clients.
public enum BrokerAddress {
    /// `explicit` (`--broker`), else `$SHOAL_BROKER`, else `http://127.0.0.1:7070`.
    public static func resolve(_ explicit: String?) -> String {
        explicit ?? environment("SHOAL_BROKER") ?? "http://\(BrokerAPI.defaultHost):\(BrokerAPI.defaultPort)"
    }
}

/// An environment variable, `nil` if unset or empty.
func environment(_ name: String) -> String? {
    guard let value = getenv(name) else { return nil }
    let text = String(cString: value)
    return text.isEmpty ? nil : text
}
