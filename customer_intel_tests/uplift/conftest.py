import pytest

from customer_intel.synthetic import generate_bank


@pytest.fixture(scope="session")
def bank_frames():
    """A 3,000-customer synthetic bank with one randomised campaign and its true uplift."""
    return generate_bank(n_customers=3000, seed=11).frames()
