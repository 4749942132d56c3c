public enum AccessModelPlaceholder {}
