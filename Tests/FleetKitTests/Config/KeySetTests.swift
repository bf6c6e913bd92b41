import FleetTestSupport
import Foundation
import HTTPTypes
import Hummingbird
import Testing
@testable import FleetConfig
@testable import FleetServer

@Suite("API keys: the rules")
struct KeySetTests {
    let keys = KeySet(user: ["user-key-1234"], admin: ["admin-key-5678"])

    @Test func missingWrongUserAndAdminKeysGetWhatTheyShould() {
        #expect(keys.grant(for: nil) == .none)
        #expect(keys.grant(for: "") == .none)
        #expect(keys.grant(for: "user-key-123") == .none, "a prefix is not the key")
        #expect(keys.grant(for: "user-key-12345") == .none, "nor is a longer string")
        #expect(keys.grant(for: "user-key-1234") == .user)
        #expect(keys.grant(for: "admin-key-5678") == .admin)
        #expect(KeySet(user: ["only-user-key"]).grant(for: "only-user-key") == .admin,
                "without adminKeys every key may change the fleet")
        #expect(!KeySet().isEnabled && keys.isEnabled)
    }

    @Test func comparisonLooksAtEveryByte() {
        #expect(KeySet.constantTimeEquals(Array("abc".utf8), Array("abc".utf8)))
        #expect(!KeySet.constantTimeEquals(Array("abc".utf8), Array("abd".utf8)))
        #expect(!KeySet.constantTimeEquals(Array("abc".utf8), Array("ab".utf8)))
        #expect(!KeySet.constantTimeEquals([], Array(repeating: 0, count: 256)), "lengths 0 and 256 differ")
    }

    @Test func theKeyIsReadFromBearerXAPIKeyOrBasic() {
        func key(_ name: HTTPField.Name, _ value: String) -> String? {
            APIKeyMiddleware<Hummingbird.BasicRequestContext>.presentedKey([name: value])
        }
        #expect(key(.authorization, "Bearer abc-123") == "abc-123")
        #expect(key(.authorization, "bearer abc-123") == "abc-123")
        #expect(key(HTTPField.Name("x-api-key")!, "abc-123") == "abc-123")
        #expect(key(.authorization, "Basic " + Data("me:abc-123".utf8).base64EncodedString()) == "abc-123")
        #expect(key(.authorization, "Basic " + Data("abc-123:".utf8).base64EncodedString()) == "abc-123")
        #expect(key(.authorization, "Token abc-123") == nil)
        #expect("\(keys)" == "1 API key(s), 1 admin key(s)", "a description says how many keys, never which")
    }

    @Test func environmentKeysAddToTheFiles() {
        let merged = keys.adding(environment: ["FLEET_API_KEYS": "env-key-aaaa, env-key-bbbb", "FLEET_ADMIN_KEYS": "env-admin-cccc"])
        #expect(merged.user == ["user-key-1234", "env-key-aaaa", "env-key-bbbb"])
        #expect(merged.admin == ["admin-key-5678", "env-admin-cccc"])
    }
}
