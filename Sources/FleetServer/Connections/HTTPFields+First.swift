import HTTPTypes

extension HTTPFields {
    /// The value of the first field named `name`, for fields that carry one value (`Content-Length`,
    /// `Connection: close`). The subscript joins every such field into a new string through a generic sequence:
    /// on every request, that was 3 % of the event loops' samples (docs/benchmarks.md, eleventh pass).
    func first(_ name: HTTPField.Name) -> String? {
        for field in self where field.name == name { return field.value }
        return nil
    }
}
