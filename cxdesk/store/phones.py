"""Phone numbers: read in the desk's region (or E.164) and store as E.164 (phonenumbers, its
metadata imported when a number is read, not by every command that imports this module)."""

from __future__ import annotations

from cxdesk.i18n import _


def normalise_phone(value: str, region: str = "US") -> str:
    """Return ``value`` as E.164 (``+14155552671``) or raise ValueError with a clear message.

    ``1-415-555-2671``, ``(415) 555-2671`` and ``+1 415 555 2671`` all read in region US.
    """
    import phonenumbers

    text = value.strip()
    example = phonenumbers.example_number_for_type(region, phonenumbers.PhoneNumberType.MOBILE)
    hint = (
        phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.INTERNATIONAL)
        if example
        else _("+<country code> <number>")
    )
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        raise ValueError(_("not a phone number (expected e.g. {hint})").format(hint=hint)) from None
    if not phonenumbers.is_valid_number(number):
        raise ValueError(_("not a valid phone number (expected e.g. {hint})").format(hint=hint))
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
