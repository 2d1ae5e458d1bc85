"""One Textual screen per module; each calls store operations in thread workers."""
