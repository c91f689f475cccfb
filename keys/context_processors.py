"""Template context shared by every public page."""

from django.http import HttpRequest

from keys.conf import limits


def helpdesk(request: HttpRequest) -> dict:
    """The helpdesk contacts of the seed, shown in every page's footer."""
    return {
        "helpdesk": {
            "phone": limits.HELPDESK_PHONE,
            "email": limits.HELPDESK_EMAIL,
            "eid_phone": limits.EID_HELPDESK_PHONE,
            "eid_email": limits.EID_HELPDESK_EMAIL,
            "help_url": limits.HELP_PAGE_URL,
        }
    }
