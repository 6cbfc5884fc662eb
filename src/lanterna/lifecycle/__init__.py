"""The data lifecycle: retention (a background job), deleting a user's or a session's
data, and importing an export. Storage through the store interface; no HTTP."""
