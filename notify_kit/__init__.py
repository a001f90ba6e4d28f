"""notify_kit: live Django model changes pushed to the browsers allowed to see them.

Deliberately empty of imports: importing the package must never touch the app registry.
"""
