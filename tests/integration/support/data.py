# data: the standard test data set (agencies, accounts, clients, agents, numbers) and its names.
"""insert_standard_data() fills a migrated database; the constants name its keys and numbers."""


class Ids:
    """Names the rows of the standard data set."""

    def __repr__(self):
        return repr(self.__dict__)


def insert_standard_data(conn):
    """Two agencies, accounts of every provider, clients, agents and numbers; returns Ids."""
    ids = Ids()

    def one(sql, *args):
        return conn.execute(sql, args).fetchone()[0]

    def agency(name):
        return one("INSERT INTO agencies (name) VALUES (%s) RETURNING id", name)

    def account(agency_id, provider, slug, api_key, secret=None, auth=None):
        return one("INSERT INTO provider_accounts (agency_id, provider, slug, api_key, "
                   "webhook_secret, webhook_auth) VALUES (%s, %s, %s, %s, %s, %s) RETURNING id",
                   agency_id, provider, slug, api_key, secret, auth)

    def client(agency_id, name):
        return one("INSERT INTO clients (agency_id, name) VALUES (%s, %s) RETURNING id",
                   agency_id, name)

    def agent(agency_id, client_id, provider, pid, name):
        return one("INSERT INTO agents (agency_id, client_id, provider, provider_agent_id, name) "
                   "VALUES (%s, %s, %s, %s, %s) RETURNING id",
                   agency_id, client_id, provider, pid, name)

    def number(agency_id, account_id, provider, e164, agent_id):
        return one("INSERT INTO phone_numbers (agency_id, account_id, provider, e164, agent_id) "
                   "VALUES (%s, %s, %s, %s, %s) RETURNING id",
                   agency_id, account_id, provider, e164, agent_id)

    ids.agency_a = agency("Agency A")
    ids.agency_b = agency("Agency B")

    ids.acct_retell = account(ids.agency_a, "retell", "ret-a", "retell-key-a")
    ids.acct_vapi = account(ids.agency_a, "vapi", "vapi-a", "vapi-api-key-a",
                            "vapi-secret-a", "hmac")
    ids.acct_vapi_bearer = account(ids.agency_a, "vapi", "vapi-bearer-a", "vapi-api-key-a2",
                                   "vapi-bearer-secret-a", "bearer")
    ids.acct_bland = account(ids.agency_a, "bland", "bland-a", "bland-api-key-a",
                             "bland-secret-a")
    ids.acct_retell_b = account(ids.agency_b, "retell", "ret-b", "retell-key-b")

    ids.client_acme = client(ids.agency_a, "Acme Dental")
    ids.client_b = client(ids.agency_b, "B Client")

    ids.agent_ret1 = agent(ids.agency_a, ids.client_acme, "retell", "agent_ret_1", "Reception")
    ids.agent_ret2 = agent(ids.agency_a, None, "retell", "agent_ret_2", "After Hours")
    ids.agent_vapi1 = agent(ids.agency_a, ids.client_acme, "vapi", "asst_vapi_1",
                            "Vapi Front Desk")
    ids.agent_bland1 = agent(ids.agency_a, ids.client_acme, "bland", "bland_agent_1",
                             "Bland Intake")
    ids.agent_b1 = agent(ids.agency_b, ids.client_b, "retell", "agent_b_1", "B Agent")

    ids.num_ret1 = number(ids.agency_a, ids.acct_retell, "retell", "+14155550101", ids.agent_ret1)
    ids.num_ret_free = number(ids.agency_a, ids.acct_retell, "retell", "+14155550102", None)
    ids.num_ret2 = number(ids.agency_a, ids.acct_retell, "retell", "+14155550103", ids.agent_ret2)
    ids.num_vapi1 = number(ids.agency_a, ids.acct_vapi, "vapi", "+14155550201", ids.agent_vapi1)
    ids.num_vapi_bearer = number(ids.agency_a, ids.acct_vapi_bearer, "vapi", "+14155550211",
                                 ids.agent_vapi1)
    ids.num_bland1 = number(ids.agency_a, ids.acct_bland, "bland", "+14155550301",
                            ids.agent_bland1)
    ids.num_b1 = number(ids.agency_b, ids.acct_retell_b, "retell", "+14155550901", ids.agent_b1)
    ids.n_numbers = 7
    return ids


# Keys and numbers of the standard data, by name.
RETELL_SLUG, RETELL_KEY = "ret-a", "retell-key-a"
RETELL_B_SLUG, RETELL_B_KEY = "ret-b", "retell-key-b"
VAPI_SLUG, VAPI_SECRET = "vapi-a", "vapi-secret-a"
VAPI_BEARER_SLUG, VAPI_BEARER_SECRET = "vapi-bearer-a", "vapi-bearer-secret-a"
BLAND_SLUG, BLAND_SECRET = "bland-a", "bland-secret-a"
NUM_RET1, NUM_RET_FREE, NUM_RET2 = "+14155550101", "+14155550102", "+14155550103"
NUM_VAPI1, NUM_VAPI_BEARER, NUM_BLAND1 = "+14155550201", "+14155550211", "+14155550301"
NUM_B1 = "+14155550901"
NUM_UNKNOWN = "+14155550999"
DEFAULT_VAPI_NO_AGENT = "Sorry, this number is not in service."


def meta(agency, agent, number, client=None):
    m = {"callrouted_agency_id": str(agency), "callrouted_agent_id": str(agent),
         "callrouted_number_id": str(number)}
    if client is not None:
        m["callrouted_client_id"] = str(client)
    return m


def variables(agent_name, client_name=None):
    v = {"agent_name": agent_name}
    if client_name is not None:
        v["client_name"] = client_name
    return v
