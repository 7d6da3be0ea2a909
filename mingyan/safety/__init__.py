"""Content safety: text normalisation, keyword banks, the per-deployment policy, the moderator
(`Moderator.check`), the streaming output guard, refusals in the user's language and AI labels.

Nothing here knows HTTP, users or the database; the chat service and the API compose it.
"""
