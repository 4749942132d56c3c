import AccessModel
import GRDB

public enum MirrorPlaceholder {}
